/**
 * Tasks between nodes (issue 15's benchmark): five nodes of five owners on
 * loopback, each with its own aedes broker, data dir, owner-signed mandate
 * and task agent, linked all-to-all through counting TCP proxies. Node 0
 * asks; the four others bid on every call. Measured per task, one at a time:
 * the time from the call for proposals to the accepted result (the bid
 * window is part of it: `tasks.bidWindow`, here 200 ms), the bytes on the
 * wire (every proxy, both ways, background gossip included) and the feed
 * bytes the task added to the requester's store (its award, the winner's
 * acknowledgement and result). `npm run bench -- --only tasks`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { EmbeddedBroker } from '../../runtime/broker/embedded-broker.js';
import { TcpProxy } from '../../runtime/cli/demo/link-proxy.js';
import { configSchema } from '../../runtime/config/schema.js';
import { Counters } from '../../runtime/counters.js';
import { TaskAgent } from '../../runtime/extensions/tasks/agent.js';
import { tasksSchema } from '../../runtime/extensions/tasks/config.js';
import { mandateBodySchema, signMandate } from '../../runtime/extensions/tasks/mandate.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../runtime/identity/identity.js';
import { createMesh, type MeshParts } from '../../runtime/mesh/create-mesh.js';
import { CommandRegistry } from '../../runtime/commands/command-registry.js';
import { sleep } from './processes.js';

const NODES = 5;

export interface TasksPlan {
  readonly tasks: number;
}
export const TASKS_FULL: TasksPlan = { tasks: 100 };
export const TASKS_QUICK: TasksPlan = { tasks: 20 };

export interface TasksResults {
  /** ms from the request (the call goes out at once) to the accepted result, per task. */
  readonly latencyMs: number[];
  readonly wireBytesPerTask: number;
  readonly feedBytesPerTask: number;
  readonly failed: number;
}

interface BenchNode {
  parts: MeshParts;
  broker: EmbeddedBroker;
  agent: TaskAgent;
  nodeId: string;
}

async function startNode(dir: string, name: string, owners: string[]): Promise<BenchNode> {
  const config = configSchema.parse({
    node: { name, dataDir: dir }, broker: { host: '127.0.0.1', port: 0 },
    mesh: { commitInterval: '20ms', antiEntropyInterval: '5s', acceptRelayedPlainLinks: true, dialBack: false, trust: { owners: owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) } },
  });
  const counters = new Counters();
  const logger = pino({ level: 'silent' });
  const { identity: node } = await loadOrCreateIdentity(dir);
  const owner = (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity;
  const parts = await createMesh(config, node, counters, logger);
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters, access: parts.access });
  await broker.start();
  await parts.mesh.start(broker);
  const mandate = signMandate(owner, mandateBodySchema.parse({
    v: 1, node: node.nodeId, expires: new Date(Date.now() + 86_400_000).toISOString(),
    sell: { kinds: ['reading-at'] }, buy: { kinds: ['reading-at'] }, data: { sellChannels: ['temperature'] },
  }));
  const registry = new CommandRegistry();
  const agent = new TaskAgent({
    mesh: parts.mesh, node, mandate, dataDir: dir, counters, logger,
    config: tasksSchema.parse({ enabled: true, bidWindow: '200ms', offers: [{ kind: 'reading-at', eta: '100ms' }] }),
    resources: { models: undefined, readingAt: (_channel, t) => Promise.resolve({ value: 20 + (t % 7), unit: '°C', t }) },
    run: (command, args) => registry.run(command, args), payments: () => false, tickMs: 20,
  });
  await agent.start();
  return { parts, broker, agent, nodeId: node.nodeId };
}

export async function measureTasks(tmp: string, plan: TasksPlan, progress: (line: string) => void): Promise<TasksResults> {
  const dir = await mkdtemp(path.join(tmp, 'tasks-'));
  const dirs = Array.from({ length: NODES }, (_, i) => path.join(dir, `node-${i}`));
  const owners = await Promise.all(dirs.map(async (d) => (await loadOrCreateKeyFile(path.join(d, 'owner.json'))).identity.publicKey));
  const nodes: BenchNode[] = [];
  const proxies: TcpProxy[] = [];
  try {
    for (const [i, d] of dirs.entries()) nodes.push(await startNode(d, `bench-${i}`, owners));
    for (const [i, from] of nodes.entries()) {
      for (const [j, to] of nodes.entries()) {
        if (i === j) continue;
        const proxy = new TcpProxy(to.broker.port);
        await proxy.start();
        proxies.push(proxy);
        from.parts.mesh.link(proxy.url, to.nodeId);
      }
    }
    const requester = nodes[0] as BenchNode;
    for (let waited = 0; requester.parts.mesh.linkedPeers().length < NODES - 1 || nodes.some((n) => n.parts.mesh.linkedPeers().length < NODES - 1); waited += 50) {
      if (waited > 30_000) throw new Error('tasks bench: the five nodes did not link within 30 s');
      await sleep(50);
    }
    await sleep(1_000); // the hellos and first state exchange are not part of any task
    const wire = () => proxies.reduce((sum, p) => sum + p.bytes.up + p.bytes.down, 0);
    const feeds = () => requester.parts.mesh.store.stats().reduce((sum, f) => sum + f.bytes, 0);
    const wireBefore = wire();
    const feedBefore = feeds();
    const latencyMs: number[] = [];
    let failed = 0;
    for (let k = 0; k < plan.tasks; k++) {
      const start = performance.now();
      const record = await requester.agent.request({ kind: 'reading-at', input: { channel: 'temperature', t: Date.now() }, maxPrice: 0, deadline: 20_000 });
      for (;;) {
        const phase = requester.agent.store.get(record.id)?.phase;
        if (phase === 'completed' || phase === 'failed') {
          if (phase === 'completed') latencyMs.push(performance.now() - start);
          else failed++;
          break;
        }
        await sleep(2);
      }
      if ((k + 1) % 10 === 0) progress(`tasks: ${k + 1}/${plan.tasks}`);
    }
    // Let the last entries reach every node before counting.
    await sleep(500);
    return { latencyMs, wireBytesPerTask: (wire() - wireBefore) / plan.tasks, feedBytesPerTask: (feeds() - feedBefore) / plan.tasks, failed };
  } finally {
    for (const n of nodes) {
      await n.agent.stop();
      await n.parts.mesh.stop();
      await n.broker.stop();
    }
    await Promise.all(proxies.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** The p-th percentile (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number);
}

