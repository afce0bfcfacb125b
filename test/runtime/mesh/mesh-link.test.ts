import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('two linked mesh nodes', () => {
  const { dir: testDir, nodes } = meshTestBed('mesh');

  it('spread new entries at once, verified, and shared state both ways', async () => {
    const dirs = ['a', 'b'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    // One owner for both: thresholds are written by nodes of the reader's own owner (mesh.sharedState, default "my-owner").
    const sameOwner = { owner: { keyFile: path.join(dirs[0] as string, 'owner.json') } };
    const [a, b] = await Promise.all(dirs.map((d, i) => startMeshNode({ name: `hive-${i}`, dir: d, trustedOwners: owners, mesh: sameOwner }))) as [TestMeshNode, TestMeshNode];
    nodes.push(a, b);
    a.mesh.link(a.broker.url.replace(String(a.broker.port), String(b.broker.port)), b.node.nodeId);
    b.mesh.link(`mqtt://127.0.0.1:${a.broker.port}`, a.node.nodeId);
    for (let i = 0; i < 5; i++) await a.mesh.append('reading', { i });
    await b.mesh.setShared('thresholds', 'swarming', 0.75);
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 5 && a.mesh.shared.get('thresholds', 'swarming') === 0.75, 10_000,
      () => JSON.stringify({ b: b.mesh.status(), counters: b.counters.snapshot() }));
    const got = [];
    for await (const e of b.mesh.store.read(a.node.nodeId)) got.push(JSON.parse(e.body) as { i: number });
    expect(got.map((g) => g.i)).toEqual([0, 1, 2, 3, 4]);
    expect(b.counters.get('feeds.applied')).toBe(5);
  });

  it('catches up on several origins larger than one batch without waiting for a timeout or anti-entropy', async () => {
    const dirs = ['a', 'b', 'x', 'y'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    // Anti-entropy off in practice: only replies and re-asks can move catch-up along.
    const mesh = { antiEntropyInterval: '1h' };
    const x = await startMeshNode({ name: 'x', dir: dirs[2] as string, trustedOwners: owners, mesh });
    const writers = await Promise.all([0, 1].map((i) => startMeshNode({ name: `w${i}`, dir: dirs[i] as string, trustedOwners: owners, mesh: { ...mesh, neighbours: [{ url: x.broker.url, nodeId: x.node.nodeId }] } })));
    nodes.push(x, ...writers);
    const filler = 'h'.repeat(1000);
    for (let i = 0; i < 400; i++) await Promise.all(writers.map((w) => w.mesh.append('reading', { i, filler })));
    for (let i = 0; i < 400; i++) await x.mesh.append('reading', { i, filler });
    await waitFor(() => writers.every((w) => x.mesh.store.head(w.node.nodeId).seq === 400), 30_000, () => JSON.stringify(x.mesh.status()));
    nodes.splice(1);
    await Promise.all(writers.map((w) => w.stop()));
    const sentBefore = x.counters.get('mesh.catchup_entries_sent');
    // y meets x with three origins of about 560 KiB each to fetch, over batches of at most 256 KiB.
    const y = await startMeshNode({ name: 'y', dir: dirs[3] as string, trustedOwners: owners, mesh: { ...mesh, neighbours: [{ url: x.broker.url, nodeId: x.node.nodeId }] } });
    nodes.push(y);
    const origins = [x, ...writers].map((n) => n.node.nodeId);
    await waitFor(() => origins.every((o) => y.mesh.store.head(o).seq === 400), 20_000,
      () => JSON.stringify({ heads: origins.map((o) => y.mesh.store.head(o).seq), counters: y.counters.snapshot() }));
    expect(y.counters.get('feeds.duplicate')).toBe(0);
    // Each missing entry sent once: no re-asks of what was already on its way.
    expect(x.counters.get('mesh.catchup_entries_sent') - sentBefore).toBe(1200);
  });
});
