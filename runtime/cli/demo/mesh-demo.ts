/**
 * `apiary demo`: several simulated beehive nodes on loopback, each a whole
 * node (its own owner, identity, data dir, broker, models), linked to every
 * other through a link proxy that the user can cut and heal. It shows the
 * mesh converge, split, keep working on both sides, and converge again.
 */
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { ApiaryNode } from '../../core/apiary-node.js';
import { createNode } from '../../apps/index.js';
import { configSchema } from '../../config/schema.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../identity/identity.js';
import type { Logger } from '../../log.js';
import { TcpProxy } from './link-proxy.js';

export interface MeshDemoOptions {
  nodes: number;
  dataDir: string;
  speed: number;
  logger: Logger;
}

interface DemoNode {
  readonly name: string;
  readonly nodeId: string;
  readonly node: ApiaryNode;
}

/** A free loopback TCP port (the demo gives each broker one before any starts). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class MeshDemo {
  readonly nodes: DemoNode[] = [];
  /** "i-j": the proxy node i dials to reach node j (1-based). */
  private readonly links = new Map<string, TcpProxy>();

  constructor(private readonly options: MeshDemoOptions) {}

  async start(): Promise<void> {
    const { nodes: count, dataDir, speed, logger } = this.options;
    const dirs = Array.from({ length: count }, (_, i) => path.join(dataDir, `hive-${i + 1}`));
    // Identities and owner keys first: every node's config names its neighbours and the owners it trusts.
    const ids = await Promise.all(dirs.map(async (dir) => {
      await mkdir(dir, { recursive: true });
      return {
        node: (await loadOrCreateIdentity(dir)).identity,
        owner: (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity.publicKey,
      };
    }));
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < count; j++) {
        if (i === j) continue;
        // Its target is set once node j listens (on a port of its own choosing: no port is guessed, so none is taken meanwhile).
        const proxy = new TcpProxy();
        await proxy.start();
        this.links.set(`${i + 1}-${j + 1}`, proxy);
      }
    }
    for (const [i, dir] of dirs.entries()) {
      const config = configSchema.parse({
        node: { name: `hive-${i + 1}`, dataDir: dir },
        log: { level: 'warn' },
        broker: { host: '127.0.0.1', port: 0 },
        device: { simulation: { speed, seed: i + 1 } },
        homeAssistant: { enabled: false },
        mesh: {
          antiEntropyInterval: '5s',
          acceptRelayedPlainLinks: true, // the demo's links go through local TCP proxies (to cut them)
          neighbours: ids.flatMap((peer, j) => (j === i ? [] : [{ url: (this.links.get(`${i + 1}-${j + 1}`) as TcpProxy).url, nodeId: peer.node.nodeId }])),
          trust: { owners: ids.map((peer, j) => ({ name: `owner of hive-${j + 1}`, publicKey: peer.owner })) },
        },
      });
      // Named, so a warning says which hive it is about.
      const node = createNode(config, logger.child({ node: `hive-${i + 1}` }));
      this.nodes.push({ name: `hive-${i + 1}`, nodeId: (ids[i] as (typeof ids)[number]).node.nodeId, node });
    }
    await Promise.all(this.nodes.map(async (n, j) => {
      await n.node.start();
      for (let i = 0; i < count; i++) if (i !== j) this.links.get(`${i + 1}-${j + 1}`)?.setTarget(n.node.brokerPort as number);
    }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.node.stop()));
    await Promise.all([...this.links.values()].map((p) => p.stop()));
  }

  /** Cuts (or heals) both directions between nodes a and b (1-based). */
  setLink(a: number, b: number, up: boolean): void {
    for (const key of [`${a}-${b}`, `${b}-${a}`]) {
      const proxy = this.links.get(key);
      if (!proxy) throw new Error(`no link between hive-${a} and hive-${b}: this demo has hive-1 to hive-${this.nodes.length}`);
      if (up) proxy.heal();
      else proxy.cut();
    }
  }

  /** Splits the mesh into groups: every link between two groups is cut, links inside a group healed. */
  split(groups: number[][]): void {
    const groupOf = new Map(groups.flatMap((g, k) => g.map((n) => [n, k] as const)));
    for (let a = 1; a <= this.nodes.length; a++) {
      for (let b = a + 1; b <= this.nodes.length; b++) this.setLink(a, b, groupOf.get(a) === groupOf.get(b));
    }
  }

  healAll(): void {
    for (const proxy of this.links.values()) proxy.heal();
  }

  /** Makes hive-n's simulated colony swarm (1-based). */
  injectSwarm(n: number): void {
    const node = this.nodes[n - 1];
    if (!node) throw new Error(`there is no hive-${n}: this demo has hive-1 to hive-${this.nodes.length}`);
    void node.node.commands.run('sim/swarm', {}).then((outcome) => {
      if (!outcome.ok) this.options.logger.warn({ node: node.name }, outcome.error);
    });
  }

  /** Entries each node holds of each origin. */
  holdings(): number[][] {
    return this.nodes.map((n) => this.nodes.map((o) => n.node.mesh?.store.head(o.nodeId).seq ?? 0));
  }

  /**
   * Holdings at one instant with nothing in flight, if one comes within about
   * half a second: nodes write several entries a second and pass them on within
   * milliseconds, so a single look mostly catches the newest on their way.
   */
  async snapshot(): Promise<number[][]> {
    let rows = this.holdings();
    for (let i = 0; i < 25 && missing(rows).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      rows = this.holdings();
    }
    return rows;
  }

  /** A table of what every node holds, which of its links are up, and what is missing. */
  table(rows = this.holdings()): string {
    const names = this.nodes.map((n) => n.name);
    const lacks = missing(rows);
    const cell = (i: number, j: number) => {
      const gap = lacks.find((l) => l.node === i && l.origin === j)?.count;
      return `${rows[i]?.[j] ?? 0}${gap ? ` (-${gap})` : ''}`;
    };
    const width = Math.max(...names.map((n) => n.length), ...rows.flatMap((row, i) => row.map((_, j) => cell(i, j).length))) + 2;
    const pad = (s: string) => s.padStart(width);
    const lines = [`${'node'.padEnd(8)} ${'links'.padEnd(this.nodes.length + 1)}${names.map(pad).join('')}`];
    for (const [i, n] of this.nodes.entries()) {
      const peers = (n.node.mesh?.status().peers ?? []) as { nodeId: string; link: string }[];
      const links = this.nodes.map((o) => (o === n ? '·' : peers.find((p) => p.nodeId === o.nodeId)?.link === 'up' ? '●' : '○')).join('');
      lines.push(`${n.name.padEnd(8)} ${links.padEnd(this.nodes.length + 1)}${names.map((_, j) => pad(cell(i, j))).join('')}`);
    }
    if (lacks.length === 0) {
      lines.push('converged: every node holds every entry of every origin');
    } else {
      const byNode = [...new Set(lacks.map((l) => l.node))].map((i) =>
        `${names[i] ?? '?'} lacks ${lacks.filter((l) => l.node === i).map((l, k) => `${l.count}${k === 0 ? ' entries' : ''} of ${names[l.origin] ?? '?'}`).join(' and ')}`);
      lines.push(`not converged: ${byNode.join('; ')}`);
    }
    return lines.join('\n');
  }
}

/** Each node's gap per origin: entries that some node (at least the origin) holds and it does not. */
function missing(rows: number[][]): { node: number; origin: number; count: number }[] {
  const best = (rows[0] ?? []).map((_, j) => Math.max(...rows.map((r) => r[j] ?? 0)));
  return rows.flatMap((row, node) => row.flatMap((seq, origin) => {
    const count = (best[origin] ?? 0) - seq;
    return count > 0 ? [{ node, origin, count }] : [];
  }));
}
