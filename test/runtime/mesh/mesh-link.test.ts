import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('two linked mesh nodes', () => {
  let dir: string;
  let nodes: TestMeshNode[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mesh-'));
  });
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
    await rm(dir, { recursive: true, force: true });
  });

  it('spread new entries at once, verified, and shared state both ways', async () => {
    const dirs = ['a', 'b'].map((n) => path.join(dir, n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const [a, b] = await Promise.all(dirs.map((d, i) => startMeshNode({ name: `hive-${i}`, dir: d, trustedOwners: owners }))) as [TestMeshNode, TestMeshNode];
    nodes = [a, b];
    a.mesh.link(a.broker.url.replace(String(a.broker.port), String(b.broker.port)), b.node.nodeId);
    b.mesh.link(`mqtt://127.0.0.1:${a.broker.port}`, a.node.nodeId);
    for (let i = 0; i < 5; i++) await a.mesh.append('reading', { i });
    await b.mesh.setShared('thresholds', 'swarming', 0.75);
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 5 && a.mesh.state.get('thresholds', 'swarming') === 0.75, 10_000,
      () => JSON.stringify({ b: b.mesh.status(), counters: b.counters.snapshot() }));
    const got = [];
    for await (const e of b.mesh.store.read(a.node.nodeId)) got.push(JSON.parse(e.body) as { i: number });
    expect(got.map((g) => g.i)).toEqual([0, 1, 2, 3, 4]);
    expect(b.counters.get('feeds.applied')).toBe(5);
  });
});
