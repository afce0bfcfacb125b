/**
 * A provider killed mid-task never yields two results. Two ways:
 * - a whole provider node (the CLI, a child process) is killed with SIGKILL
 *   as soon as it has taken an award, restarted on the same data dir, and
 *   the requester ends with the task answered once, the provider's feed
 *   holding exactly one result or failure for it;
 * - deterministically, the two states a crash can leave on disk: the task
 *   acknowledged with no answer in the feed (it is run and answered once),
 *   and answered but not yet marked done (nothing more is said).
 */
import { existsSync, watch } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../../runtime/cli/demo/mesh-demo.js';
import { requestNode } from '../../../../runtime/cli/node-request.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { mandateBodySchema, signMandate } from '../../../../runtime/extensions/tasks/mandate.js';
import { TaskStore, type TaskRecord } from '../../../../runtime/extensions/tasks/task-store.js';
import { signProposal } from '../../../../runtime/extensions/tasks/wire.js';
import { meshTestBed, waitFor, type TestMeshNode } from '../../../support/mesh-node.js';
import { startNodeProcess, type NodeProcess } from '../../../support/node-process.js';
import { OPEN_MANDATE, ownerKeysOf, startTaskNode, type TaskNode } from './task-bed.js';

/** The answers (task-result, task-failure) `origin` gave for `task`, as `reader` reads them in the feed it holds. */
async function answers(reader: TestMeshNode, origin: string, task: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of reader.mesh.store.read(origin)) {
    const read = reader.mesh.readEntry(entry);
    if ((read?.type === 'task-result' || read?.type === 'task-failure') && (read.body as { task?: string }).task === task) out.push(read.type);
  }
  return out;
}

describe('a provider killed mid-task', () => {
  const bed = meshTestBed('tasks-crash');
  const settled = (r: TaskRecord | undefined) => r?.phase === 'completed' || r?.phase === 'failed';

  it('restarted after SIGKILL, answers the task exactly once', async () => {
    const dirs = ['requester', 'child'].map((n) => path.join(bed.dir(), n));
    const [requesterOwner, childOwner] = await ownerKeysOf(dirs);
    const childDir = dirs[1] ?? '';
    const child = (await loadOrCreateIdentity(childDir)).identity;
    const owner = (await loadOrCreateKeyFile(path.join(childDir, 'owner.json'))).identity;
    const mandate = signMandate(owner, mandateBodySchema.parse({ v: 1, node: child.nodeId, expires: new Date(Date.now() + 86_400_000).toISOString(), ...OPEN_MANDATE }));
    await writeFile(path.join(childDir, 'mandate.json'), JSON.stringify(mandate));
    const requester: TaskNode = await startTaskNode({
      name: 'requester', dir: dirs[0] ?? '', trustedOwners: [requesterOwner ?? '', childOwner ?? ''], tasks: { ackTimeout: '40s', grace: '40s' },
    });
    let running: NodeProcess | undefined;
    try {
      const childPort = await freePort();
      await writeFile(path.join(bed.dir(), 'apiary.yaml'), `
node: { name: child }
device:
  simulation: { speed: 600 }
  sensors: { temperature: { interval: 10s }, humidity: { interval: 10s }, weight: { interval: 10s }, sound: { interval: 1m } }
log: { level: warn }
mesh:
  commitInterval: 20ms
  antiEntropyInterval: 1s
  neighbours: [{ url: "${requester.mesh.broker.url}", nodeId: ${requester.mesh.node.nodeId} }]
  trust: { owners: [{ name: requester-owner, publicKey: "${requesterOwner ?? ''}" }] }
tasks:
  enabled: true
  mandate: mandate.json
  offers: [{ kind: reading-at, price: 0, eta: 1s }]
`);
      const args = ['--config', path.join(bed.dir(), 'apiary.yaml'), '--data-dir', childDir, '--port', String(childPort)];
      running = await startNodeProcess(args);
      requester.mesh.mesh.link(`mqtt://127.0.0.1:${childPort}`, child.nodeId);
      await waitFor(() => requester.mesh.mesh.linkedPeers().includes(child.nodeId), 20_000, () => running?.output() ?? '');

      // Killed the moment its task file appears (written before the acknowledgement leaves).
      const tasksDir = path.join(childDir, 'tasks');
      await waitFor(() => existsSync(tasksDir), 20_000);
      let killedAt: string | undefined;
      const watcher = watch(tasksDir, (_event, name) => {
        if (killedAt === undefined && name?.startsWith('p-') && name.endsWith('.json')) {
          running?.child.kill('SIGKILL');
          killedAt = name;
        }
      });
      const record = await requester.agent.request({ kind: 'reading-at', input: { channel: 'temperature', t: Date.now() + 60_000 }, maxPrice: 0, deadline: 120_000 });
      await waitFor(() => killedAt !== undefined, 20_000, () => JSON.stringify(requester.agent.store.get(record.id)));
      watcher.close();
      expect((await running.exited).signal).toBe('SIGKILL');
      const phaseAtKill = (JSON.parse(await readFile(path.join(tasksDir, `p-${record.id}.json`), 'utf8')) as TaskRecord).phase;
      expect(['working', 'completed', 'failed']).toContain(phaseAtKill);

      running = await startNodeProcess(args);
      await waitFor(() => settled(requester.agent.store.get(record.id)), 40_000, () => `${JSON.stringify(requester.agent.store.get(record.id))}\n${running?.output() ?? ''}`);
      // Everything the child wrote for the task has reached the requester: exactly one answer.
      await waitFor(async () => (await answers(requester.mesh, child.nodeId, record.id)).length >= 1, 20_000);
      // The node's own view: `apiary status` has the tasks entry, and tasks/list shows the task.
      const ask = async (command: string) => (await requestNode({ url: `mqtt://127.0.0.1:${childPort}`, topicPrefix: 'apiary', nodeId: child.nodeId, command })).result;
      const status = (await ask('status')) as { tasks?: { tasks: Record<string, number>; mandate: { sell: string[] } | null; payments: string; reputation: object } };
      expect(status.tasks?.mandate?.sell).toEqual(['hive-sound', 'reading-at']);
      expect(status.tasks?.payments).toBe('off (tasks run at price 0)');
      expect(Object.entries(status.tasks?.tasks ?? {}).filter(([k]) => k.startsWith('provider.')).map(([, n]) => n)).toEqual([1]);
      expect(((await ask('tasks/list')) as { id: string; role: string }[]).map((t) => [t.id, t.role])).toEqual([[record.id, 'provider']]);
      running.child.kill('SIGTERM');
      expect((await running.exited).code).toBe(0);
      running = undefined;
      const reread = new TaskStore(childDir);
      await reread.open();
      expect(['completed', 'failed']).toContain(reread.get(record.id)?.phase);
      expect(await answers(requester.mesh, child.nodeId, record.id)).toHaveLength(1);
      expect(requester.mesh.counters.get('tasks.results_ignored')).toBe(0);
    } finally {
      if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
      await requester.stop();
    }
  }, 120_000);

  it('resumes an acknowledged task with no answer once, and leaves an answered one alone', async () => {
    const dirs = ['requester', 'provider'].map((n) => path.join(bed.dir(), n));
    const owners = await ownerKeysOf(dirs);
    const readings = { temperature: [{ value: 21, unit: '°C', t: 1_000 }] };
    const provider = await startTaskNode({ name: 'provider', dir: dirs[1] ?? '', trustedOwners: owners, readings, tasks: { offers: [{ kind: 'reading-at' }] } });
    const requester = await startTaskNode({ name: 'requester', dir: dirs[0] ?? '', trustedOwners: owners, mesh: { neighbours: [{ url: provider.mesh.broker.url, nodeId: provider.mesh.node.nodeId }] } });
    try {
      await waitFor(() => requester.mesh.mesh.linkedPeers().length === 1 && provider.mesh.mesh.linkedPeers().length === 1, 20_000);
      // What a crash leaves: the task on disk as working; for "answered", the result already in the provider's own feed.
      await provider.agent.stop();
      const me = provider.mesh.node.nodeId;
      const them = requester.mesh.node.nodeId;
      const crashed = async (id: string, answered: boolean) => {
        const proposal = signProposal(provider.mesh.node, { task: id, requester: them, bidder: me, kind: 'reading-at', price: 0, unit: 'credit', eta: 10, validUntil: Date.now() + 60_000 });
        const record: TaskRecord = { id, role: 'provider', kind: 'reading-at', input: { channel: 'temperature', t: 2_000 }, phase: 'working', peer: them, maxPrice: 0, unit: 'credit', deadline: Date.now() + 60_000, attempt: 1, proposals: [], refusals: [], passedOver: [], award: proposal, created: Date.now(), updated: Date.now() };
        await provider.agent.store.save(record);
        await provider.mesh.mesh.appendPrivate('task-ack', { task: id, attempt: 1 }, [them]);
        if (answered) await provider.mesh.mesh.appendPrivate('task-result', { task: id, attempt: 1, output: { channel: 'temperature', value: 21, unit: '°C', t: 1_000 } }, [them]);
      };
      await crashed('crashed-unanswered', false);
      await crashed('crashed-answered', true);
      const restarted = await startTaskNode({ name: 'provider', dir: dirs[1] ?? '', trustedOwners: owners, readings, tasks: { offers: [{ kind: 'reading-at' }] }, reuse: provider.mesh });
      await waitFor(async () => (await answers(requester.mesh, me, 'crashed-unanswered')).length >= 1 && (await answers(requester.mesh, me, 'crashed-answered')).length >= 1, 20_000);
      expect(restarted.agent.store.get('crashed-unanswered')?.phase).toBe('completed');
      expect(restarted.agent.store.get('crashed-answered')?.phase).toBe('completed');
      expect(await answers(provider.mesh, me, 'crashed-unanswered')).toEqual(['task-result']);
      expect(await answers(provider.mesh, me, 'crashed-answered')).toEqual(['task-result']);
      expect(provider.mesh.counters.get('tasks.resumed')).toBe(1);
      await restarted.agent.stop();
    } finally {
      await requester.stop();
      await provider.stop();
    }
  });
});
