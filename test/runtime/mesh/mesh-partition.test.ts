/**
 * Five nodes of five owners, each with its own broker and data dir, linked
 * all-to-all through fault-injecting TCP proxies. They are split into two
 * groups; both sides keep writing entries and editing shared state; then
 * the links heal. Every node must end with every entry of every origin
 * exactly once, identical everywhere, and the same shared state.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryHash } from '../../../runtime/mesh/feed-entry.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';

const N = 5;
const groupOf = (i: number) => (i < 2 ? 0 : 1);

describe('five nodes through a partition', () => {
  let dir: string;
  let nodes: TestMeshNode[] = [];
  const proxies = new Map<string, TcpProxy>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-partition-'));
    const dirs = Array.from({ length: N }, (_, i) => path.join(dir, `node-${i}`));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    // The same write rules everywhere (any trusted node may set thresholds), so every node reads the same document.
    nodes = await Promise.all(dirs.map((d, i) => startMeshNode({ name: `hive-${i}`, dir: d, trustedOwners: owners, mesh: { acceptRelayedPlainLinks: true, sharedState: { otherMaps: 'any-trusted' } } })));
    for (const [i, from] of nodes.entries()) {
      for (const [j, to] of nodes.entries()) {
        if (i === j) continue;
        const proxy = new TcpProxy(to.broker.port);
        await proxy.start();
        proxies.set(`${i}-${j}`, proxy);
        from.mesh.link(proxy.url, to.node.nodeId);
      }
    }
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all([...proxies.values()].map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  const heads = (n: TestMeshNode) => Object.fromEntries(nodes.map((o) => [o.name, n.mesh.store.head(o.node.nodeId).seq]));

  it('converges: every entry of every origin exactly once on every node, and one shared state', async () => {
    // Connected first: a few entries each, seen everywhere.
    for (const n of nodes) for (let k = 0; k < 3; k++) await n.mesh.append('reading', { node: n.name, k });
    await waitFor(() => nodes.every((n) => nodes.every((o) => n.mesh.store.head(o.node.nodeId).seq === 3)), 20_000,
      () => JSON.stringify(nodes.map(heads)));

    // Partition: cut every link between the groups.
    for (const [key, proxy] of proxies) {
      const [i, j] = key.split('-').map(Number) as [number, number];
      if (groupOf(i) !== groupOf(j)) proxy.cut();
    }
    // Both sides keep writing and editing the shared state, concurrently on the same keys too.
    for (let round = 0; round < 10; round++) {
      await Promise.all(nodes.map((n) => n.mesh.append('reading', { node: n.name, round })));
    }
    await (nodes[0] as TestMeshNode).mesh.setShared('thresholds', 'swarming', 0.7);
    await (nodes[3] as TestMeshNode).mesh.setShared('thresholds', 'swarming', 0.9);
    for (const n of nodes) await n.mesh.setShared('members', n.node.nodeId, { name: n.name, owner: n.identity.certificate.owner });
    // Inside each group, the writes spread; across the cut, nothing.
    await waitFor(() => (nodes[1] as TestMeshNode).mesh.store.head((nodes[0] as TestMeshNode).node.nodeId).seq === 13, 20_000);
    expect((nodes[0] as TestMeshNode).mesh.store.head((nodes[4] as TestMeshNode).node.nodeId).seq).toBe(3);

    // Heal, and keep writing meanwhile.
    for (const proxy of proxies.values()) proxy.heal();
    for (const n of nodes) await n.mesh.append('reading', { node: n.name, after: true });
    const expected = 14;
    await waitFor(() => nodes.every((n) => nodes.every((o) => n.mesh.store.head(o.node.nodeId).seq === expected))
      && new Set(nodes.map((n) => n.mesh.state.canonical())).size === 1 && new Set(nodes.map((n) => n.mesh.shared.canonical())).size === 1, 60_000,
      () => JSON.stringify({ states: nodes.map((n) => n.mesh.state.canonical()), sv: nodes.map((n) => Buffer.from(n.mesh.state.stateVector()).toString("hex")), counters: nodes.map((n) => n.counters.snapshot()) }));

    // Exactly once and identical: every node holds seqs 1..14 of every origin, the very same entries.
    const reference = new Map<string, string[]>();
    for (const n of nodes) {
      for (const origin of nodes) {
        const seqs: number[] = [];
        const hashes: string[] = [];
        for await (const e of n.mesh.store.read(origin.node.nodeId)) {
          seqs.push(e.seq);
          hashes.push(entryHash(e));
        }
        expect(seqs).toEqual(Array.from({ length: expected }, (_, k) => k + 1));
        const ref = reference.get(origin.name);
        if (ref) expect(hashes).toEqual(ref);
        else reference.set(origin.name, hashes);
      }
      expect(n.counters.get('feeds.fork')).toBe(0);
    }
    // One shared state, byte for byte (the signed ops, and the document read from them); the concurrent edit resolved the same way everywhere.
    expect(new Set(nodes.map((n) => n.mesh.state.canonical())).size).toBe(1);
    const states = nodes.map((n) => n.mesh.shared.canonical());
    expect(new Set(states).size).toBe(1);
    const doc = JSON.parse(states[0] as string) as { thresholds: { swarming: number }; members: Record<string, unknown> };
    expect([0.7, 0.9]).toContain(doc.thresholds.swarming);
    expect(Object.keys(doc.members)).toHaveLength(N);
  }, 120_000);
});
