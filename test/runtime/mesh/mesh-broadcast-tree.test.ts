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

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-tree-'));
    const dirs = Array.from({ length: N }, (_, i) => path.join(dir, `node-${i}`));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    nodes = await Promise.all(dirs.map((d, i) => startMeshNode({
      name: `hive-${i}`, dir: d, trustedOwners: owners,
      mesh: { acceptRelayedPlainLinks: true, antiEntropyInterval: '1h', commitInterval: '20ms', dialBack: false },
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
    const reached = new Set([nodes[0]?.node.nodeId]);
    for (let grew = true; grew;) {
      grew = false;
      for (const edge of edges) {
        const [a, b] = edge.split('-') as [string, string];
        if (reached.has(a) !== reached.has(b)) { reached.add(a); reached.add(b); grew = true; }
      }
    }
    expect(reached.size, describeAll()).toBe(N);

    // Steady state: duplicates per entry per receiving node, against flooding's up to N - 2.
    const before = count('feeds.duplicate');
    const written = 20;
    for (const n of nodes) await write(n, written / N);
    const perDelivery = (count('feeds.duplicate') - before) / (written * (N - 1));
    expect(perDelivery, describeAll()).toBeLessThan(0.5);
  }, 120_000);

  it('heals when the tree\'s links to a node are cut: entries are grafted from a lazy link', async () => {
    // The node with the fewest eager links, cut from every eager neighbour (both directions); its lazy links stay.
    const victim = [...nodes].sort((a, b) => treeOf(a).eager.length - treeOf(b).eager.length)[0] as TestMeshNode;
    const v = indexOf(victim.node.nodeId);
    const eager = treeOf(victim).eager.map(indexOf);
    expect(eager.length).toBeGreaterThan(0);
    expect(treeOf(victim).lazy.length, describeAll()).toBeGreaterThan(0); // all-to-all: N - 1 links, not all on the tree
    for (const j of eager) {
      proxies.get(`${v}-${j}`)?.cut();
      proxies.get(`${j}-${v}`)?.cut();
    }
    await waitFor(() => eager.every((j) => !victim.mesh.linkedPeers().includes((nodes[j] as TestMeshNode).node.nodeId)), 20_000, describeAll);
    const grafts = count('mesh.tree.grafts', [victim]);
    const writer = nodes[eager[0] as number] as TestMeshNode;
    await write(writer, 3);
    expect(count('mesh.tree.grafts', [victim])).toBeGreaterThan(grafts);
    for (const j of eager) {
      proxies.get(`${v}-${j}`)?.heal();
      proxies.get(`${j}-${v}`)?.heal();
    }
    await waitFor(() => victim.mesh.linkedPeers().length === N - 1, 30_000, describeAll);
  }, 120_000);

  it('heals when a node on the tree goes silent (its links held, as a board that lost power): entries are grafted before any link is seen down', async () => {
    const hub = nodes.find((n) => treeOf(n).eager.length >= 2);
    if (!hub) throw new Error(`no node has two eager links: ${describeAll()}`);
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
    // A node with two or more eager links: entries of others reach someone only through it.
    const hub = nodes.find((n) => treeOf(n).eager.length >= 2);
    if (!hub) throw new Error(`no node has two eager links: ${describeAll()}`);
    stopped.add(hub);
    await hub.stop();
    const writer = live()[0] as TestMeshNode;
    await write(writer, 5);
    for (const n of live()) await write(n, 1);
    expect(live().every((n) => live().every((o) => n.mesh.store.head(o.node.nodeId).seq === o.mesh.store.head(o.node.nodeId).seq))).toBe(true);
  }, 120_000);
});
