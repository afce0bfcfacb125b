/**
 * Range reconciliation next to nodes of an older version (test/sim): a peer
 * that never sends a `sum` keeps getting full have-vectors, and a node put
 * back to an older version after it reconciled gets them again by the next
 * anti-entropy round, so it still catches up.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, MeshSim, type SimNode } from '../../sim/mesh-sim.js';

const SEC = 1000;

describe('range reconciliation beside older nodes (simulation)', () => {
  it('an older peer is told what we hold in full have-vectors, also after it was downgraded, and catches up', async () => {
    const sim = new MeshSim({ ...DEFAULT_SETTINGS, antiEntropyMs: 5 * SEC }, { latencyMs: 20, jitterMs: 10, loss: 0 }, 11);
    sim.addNodes(3);
    for (const n of sim.nodes) n.start();
    const [a, b, c] = sim.nodes as [SimNode, SimNode, SimNode];
    c.older = true;
    sim.connect(a, b);
    sim.connect(b, c);
    let t = await sim.clock.run(2 * SEC);
    for (const n of [a, b, c]) for (let i = 0; i < 3; i++) await n.write({ i });
    t = await sim.clock.run(t + 10 * SEC);
    expect(sim.converged()).toBe(true);
    // a and b reconcile with each other; c never sent a sum, so b's haves to it are full.
    expect(a.counters.snapshot()['mesh.rejected.sum_range'] ?? 0).toBe(0);
    expect(c.counters.snapshot()['mesh.rejected.message_malformed']).toBeGreaterThan(0);

    // b is put back to an older version while parted from both; a and c write meanwhile; it must still catch up both ways.
    sim.partition((n) => (n === b ? 1 : 0));
    b.older = true;
    t = await sim.clock.run(t + 2 * SEC);
    for (const n of [a, c]) for (let i = 0; i < 5; i++) await n.write({ later: i });
    for (let i = 0; i < 5; i++) await b.write({ alone: i });
    // Their pushes went while parted (lost): only the link-up exchange and anti-entropy can bring them.
    t = await sim.clock.run(t + SEC);
    sim.heal();
    await sim.clock.run(t + 30 * SEC, () => sim.converged());
    expect(sim.converged(), JSON.stringify(sim.nodes.map((n) => sim.nodes.map((o) => n.store.head(o.id).seq)))).toBe(true);
  }, 60_000);
});
