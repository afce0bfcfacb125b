/**
 * The broadcast tree on real nodes (issue 16): five nodes of five owners,
 * linked all-to-all through TCP proxies, anti-entropy an hour away so only
 * the tree can deliver. Redundant links are pruned to lazy, so new entries
 * arrive about once per node; when the tree's links to a node are cut, or a
 * node on the tree is stopped, the entries still arrive, grafted from the
 * lazy links.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

const N = 5;
interface Tree { eager: string[]; lazy: string[] }

describe('the broadcast tree on five nodes', () => {
  let dir: string;
  let nodes: TestMeshNode[] = [];
  const proxies = new Map<string, TcpProxy>();
  const stopped = new Set<TestMeshNode>();
  const live = () => nodes.filter((n) => !stopped.has(n));
  const treeOf = (n: TestMeshNode) => n.mesh.status().tree as Tree;
  const count = (name: string, among = live()) => among.reduce((sum, n) => sum + (n.counters.snapshot()[name] ?? 0), 0);
  const describeAll = () => JSON.stringify(live().map((n) => ({ name: n.name, tree: treeOf(n), heads: live().map((o) => n.mesh.store.head(o.node.nodeId).seq) })));
  /** `writer` appends `k` entries; waits until every live node holds them. */
  async function write(writer: TestMeshNode, k: number): Promise<void> {
    for (let i = 0; i < k; i++) await writer.mesh.append('reading', { i });
    const target = writer.mesh.store.head(writer.node.nodeId).seq;
    await waitFor(() => live().every((n) => n.mesh.store.head(writer.node.nodeId).seq === target), 20_000, describeAll);
  }
  const indexOf = (id: string) => nodes.findIndex((n) => n.node.nodeId === id);
  /** Whether the eager links among `among` join them all (a link counts if either end holds it eager: a prune may be in flight). */
  const joined = (among: TestMeshNode[]) => {
    const ids = new Set(among.map((n) => n.node.nodeId));
    const edges = among.flatMap((n) => treeOf(n).eager.filter((peer) => ids.has(peer)).map((peer) => [n.node.nodeId, peer] as const));
    const reached = new Set([among[0]?.node.nodeId]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [a, b] of edges) {
        if (reached.has(a) !== reached.has(b)) { reached.add(a); reached.add(b); grew = true; }
      }
    }
    return reached.size === among.length;
  };
  const lazyBothWays = (a: TestMeshNode, b: TestMeshNode) => treeOf(a).lazy.includes(b.node.nodeId) && treeOf(b).lazy.includes(a.node.nodeId);
  /** A node the others reach each other only through, on the tree (links a reconnect made eager again are pruned by more writes). */
  async function treeHub(): Promise<TestMeshNode> {
    for (let round = 0; round < 10; round++) {
      const hub = live().find((n) => !joined(live().filter((o) => o !== n)));
      if (hub) return hub;
      for (const n of live()) await write(n, 1);
    }
    throw new Error(`no node holds the tree together: ${describeAll()}`);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-tree-'));
    const dirs = Array.from({ length: N }, (_, i) => path.join(dir, `node-${i}`));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    nodes = await Promise.all(dirs.map((d, i) => startMeshNode({
      name: `hive-${i}`, dir: d, trustedOwners: owners,
      // A graft timeout well above a loaded test machine's event-loop stalls: a graft is then a lost path, not a slow one.
      mesh: { acceptRelayedPlainLinks: true, antiEntropyInterval: '1h', commitInterval: '20ms', dialBack: false, graftTimeout: '3s' },
    })));
    for (const [i, from] of nodes.entries()) {
      for (const [j, to] of nodes.entries()) {
        if (i === j) continue;
        const proxy = new TcpProxy(to.broker.port);
        await proxy.start();
        proxies.set(`${i}-${j}`, proxy);
        from.mesh.link(proxy.url, to.node.nodeId);
      }
    }
    await waitFor(() => nodes.every((n) => n.mesh.linkedPeers().length === N - 1), 30_000, describeAll);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(live().map((n) => n.stop()));
    await Promise.all([...proxies.values()].map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('prunes redundant links: once the tree has formed, each entry reaches each node about once', async () => {
    // Forming: every node writes, so every link carries a push and the redundant ones are pruned.
    for (const n of nodes) await write(n, 5);
    expect(count('mesh.tree.pruned')).toBeGreaterThan(0);
    // The eager links left still join every node (a spanning tree, give or take a link), with far fewer than the 10 links.
    const edges = new Set(nodes.flatMap((n) => treeOf(n).eager.map((peer) => [n.node.nodeId, peer].sort().join('-'))));
    expect(edges.size, describeAll()).toBeLessThan((N * (N - 1)) / 2);
    expect(joined(nodes), describeAll()).toBe(true);

    // Steady state: duplicates per entry per receiving node, against flooding's up to N - 2.
    const before = count('feeds.duplicate');
    const written = 20;
    for (const n of nodes) await write(n, written / N);
    const perDelivery = (count('feeds.duplicate') - before) / (written * (N - 1));
    expect(perDelivery, describeAll()).toBeLessThan(0.5);
  }, 120_000);

  it('heals when the tree\'s links to a node are cut: entries are grafted from a lazy link', async () => {
    // A node and one neighbour that both hold their link lazy: every other link of the node is cut, so only a graft on that one can bring it entries.
    let pair: [TestMeshNode, TestMeshNode] | undefined;
    for (let round = 0; round < 10 && !pair; round++) {
      for (const a of nodes) for (const b of nodes) if (!pair && a !== b && lazyBothWays(a, b)) pair = [a, b];
      if (!pair) for (const n of nodes) await write(n, 1);
    }
    if (!pair) throw new Error(`no link is lazy at both ends: ${describeAll()}`);
    const [victim, keeper] = pair;
    const v = indexOf(victim.node.nodeId);
    const others = nodes.map((_, j) => j).filter((j) => j !== v && j !== indexOf(keeper.node.nodeId));
    for (const j of others) {
      proxies.get(`${v}-${j}`)?.cut();
      proxies.get(`${j}-${v}`)?.cut();
    }
    await waitFor(() => victim.mesh.linkedPeers().length === 1, 20_000, describeAll);
    const grafts = count('mesh.tree.grafts', [victim]);
    await write(nodes[others[0] as number] as TestMeshNode, 3);
    expect(count('mesh.tree.grafts', [victim])).toBeGreaterThan(grafts);
    for (const j of others) {
      proxies.get(`${v}-${j}`)?.heal();
      proxies.get(`${j}-${v}`)?.heal();
    }
    await waitFor(() => nodes.every((n) => n.mesh.linkedPeers().length === N - 1), 30_000, describeAll);
  }, 120_000);

  it('heals when a node on the tree goes silent (its links held, as a board that lost power): entries are grafted before any link is seen down', async () => {
    await waitFor(() => nodes.every((n) => n.mesh.linkedPeers().length === N - 1), 30_000, describeAll);
    const hub = await treeHub();
    const h = indexOf(hub.node.nodeId);
    const held = [...proxies].filter(([key]) => key.split('-').map(Number).includes(h)).map(([, proxy]) => proxy);
    for (const proxy of held) proxy.hold();
    stopped.add(hub); // out of the count while silent
    try {
      const grafts = count('mesh.tree.grafts');
      for (const n of live()) await write(n, 2);
      expect(count('mesh.tree.grafts')).toBeGreaterThan(grafts);
      // Every link to it still counts as up: the tree healed without waiting for a failure to be noticed.
      for (const n of live()) expect(n.mesh.linkedPeers(), n.name).toContain(hub.node.nodeId);
    } finally {
      for (const proxy of held) proxy.release();
      stopped.delete(hub);
    }
    // Back: it catches up with what it missed (its links never went down, so the tree and the announcements bring it).
    for (const n of live()) await write(n, 1);
  }, 120_000);

  it('heals when a node on the tree stops: the others still get every new entry', async () => {
    const hub = await treeHub();
    stopped.add(hub);
    await hub.stop();
    const writer = live()[0] as TestMeshNode;
    await write(writer, 5);
    for (const n of live()) await write(n, 1);
    expect(live().every((n) => live().every((o) => n.mesh.store.head(o.node.nodeId).seq === o.mesh.store.head(o.node.nodeId).seq))).toBe(true);
  }, 120_000);
});
