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
  /** What each origin held of its own feed at the previous table. */
  private previousOwn: number[] | undefined;

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
        port: await freePort(),
      };
    }));
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < count; j++) {
        if (i === j) continue;
        const proxy = new TcpProxy((ids[j] as (typeof ids)[number]).port);
        await proxy.start();
        this.links.set(`${i + 1}-${j + 1}`, proxy);
      }
    }
    for (const [i, dir] of dirs.entries()) {
      const config = configSchema.parse({
        node: { name: `hive-${i + 1}`, dataDir: dir },
        log: { level: 'warn' },
        broker: { host: '127.0.0.1', port: ids[i]?.port },
        device: { simulation: { speed, seed: i + 1 } },
        homeAssistant: { enabled: false },
        mesh: {
          antiEntropyInterval: '5s',
          acceptRelayedPlainLinks: true, // the demo's links go through local TCP proxies (to cut them)
          neighbours: ids.flatMap((peer, j) => (j === i ? [] : [{ url: (this.links.get(`${i + 1}-${j + 1}`) as TcpProxy).url, nodeId: peer.node.nodeId }])),
          trust: { owners: ids.map((peer, j) => ({ name: `owner of hive-${j + 1}`, publicKey: peer.owner })) },
        },
      });
      const node = createNode(config, logger);
      this.nodes.push({ name: `hive-${i + 1}`, nodeId: (ids[i] as (typeof ids)[number]).node.nodeId, node });
    }
    await Promise.all(this.nodes.map((n) => n.node.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.node.stop()));
    await Promise.all([...this.links.values()].map((p) => p.stop()));
  }

  /** Cuts (or heals) both directions between nodes a and b (1-based). */
  setLink(a: number, b: number, up: boolean): void {
    for (const key of [`${a}-${b}`, `${b}-${a}`]) {
      const proxy = this.links.get(key);
      if (!proxy) throw new Error(`no link between hive-${a} and hive-${b} (nodes are 1 to ${this.nodes.length})`);
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

  /** Entries each node holds of each origin. */
  holdings(): number[][] {
    return this.nodes.map((n) => this.nodes.map((o) => n.node.mesh?.store.head(o.nodeId).seq ?? 0));
  }

  /**
   * Converged: every node holds at least what each origin itself held at the
   * previous table. Nodes never stop writing, so an exact match at one
   * instant is rare; what matters is that nothing stays behind.
   */
  converged(rows = this.holdings()): boolean {
    const previous = this.previousOwn;
    return previous !== undefined && rows.every((row) => row.every((seq, j) => seq >= (previous[j] ?? 0)));
  }

  /** A table of what every node holds, and which of its links are up. */
  table(): string {
    const rows = this.holdings();
    const best = this.nodes.map((_, j) => Math.max(...rows.map((r) => r[j] ?? 0)));
    const width = 9;
    const pad = (s: string) => s.padStart(width);
    const lines = [`${'node'.padEnd(8)} ${'links'.padEnd(this.nodes.length + 1)}${this.nodes.map((n) => pad(n.name)).join('')}`];
    for (const [i, n] of this.nodes.entries()) {
      const peers = (n.node.mesh?.status().peers ?? []) as { nodeId: string; link: string }[];
      const links = this.nodes.map((o) => (o === n ? '·' : peers.find((p) => p.nodeId === o.nodeId)?.link === 'up' ? '●' : '○')).join('');
      const cells = (rows[i] ?? []).map((seq, j) => pad(seq === best[j] ? String(seq) : `${seq}-${(best[j] ?? 0) - seq}`));
      lines.push(`${n.name.padEnd(8)} ${links.padEnd(this.nodes.length + 1)}${cells.join('')}`);
    }
    lines.push(this.converged(rows) ? 'converged: every node holds every entry of every origin (up to the last table)' : 'catching up (n-k: holds n, lacks k)');
    this.previousOwn = rows.map((row, i) => row[i] ?? 0);
    return lines.join('\n');
  }
}

export const DEMO_HELP = `commands (type and press Enter):
  cut A B        cut the link between hive-A and hive-B      (e.g. cut 1 2)
  heal A B       heal it
  split 1,2 3,4,5  split the mesh into groups (links between groups cut)
  heal           heal every link
  swarm A        make hive-A's colony swarm (its decision spreads to all)
  show           print the table now
  quit           stop every node and exit (or Ctrl-C)`;
