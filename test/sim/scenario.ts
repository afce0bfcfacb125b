/**
 * One run of the mesh simulation (mesh-sim.ts): N nodes on a random mesh of
 * the given degree; a steady phase where every node writes at a fixed rate
 * (duplicates per entry and bytes per node per entry on the tree), then a
 * partition into two halves that keep writing, a heal, and the time until
 * every node holds every entry. Times are simulated; the wall time and the
 * heap are this process's.
 */
import { DEFAULT_SETTINGS, MeshSim, randomMesh, type NetworkModel } from './mesh-sim.js';
import type { GossipSettings } from '../../runtime/mesh/feed-gossip.js';

export interface ScenarioPlan {
  readonly nodes: number;
  readonly degree: number;
  /** Entries each node writes per simulated second. */
  readonly rate: number;
  /** Writing before the steady numbers count: each origin's tree forms from its first entries (one flood per origin). */
  readonly warmupMs: number;
  readonly steadyMs: number;
  readonly partitionMs: number;
  /** Gives up this long after the heal. */
  readonly convergeTimeoutMs: number;
  readonly network: NetworkModel;
  readonly settings?: Partial<GossipSettings>;
  /** Nodes that go down during the partition and come back at the heal (churn), as a share of all. */
  readonly churn?: number;
  readonly seed?: number;
}

export interface ScenarioResult {
  readonly plan: ScenarioPlan;
  readonly edges: number;
  readonly diameter: number;
  /** Steady phase: entries written, duplicates received per entry per receiving node, bytes sent per node per entry. */
  readonly steady: { written: number; duplicatesPerEntry: number; duplicatesPerDelivery: number; bytesPerNodePerEntry: number; bytesPerEntryByType: Record<string, number>; entryBytes: number; grafts: number; prunes: number };
  /** From the heal: time until every live node holds every entry (undefined: not within the timeout), and bytes sent since. */
  readonly heal: { missingEntries: number; convergedMs: number | undefined; bytesPerMissingEntryBytes: number; written: number };
  /** Heap used by the simulation's nodes (their gossip state and the shared entries), per node. */
  readonly heapPerNodeBytes: number;
  readonly events: number;
  readonly wallMs: number;
}

const SEC = 1000;

export async function runScenario(plan: ScenarioPlan, progress: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const started = performance.now();
  /** With --expose-gc, heap is measured after a collection: what the nodes hold, not garbage not yet collected. */
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  collect();
  const heapBefore = process.memoryUsage().heapUsed;
  const sim = new MeshSim({ ...DEFAULT_SETTINGS, ...plan.settings }, plan.network, plan.seed ?? 1);
  sim.addNodes(plan.nodes);
  const { edges, diameter } = randomMesh(sim, plan.degree, plan.seed ?? 7);
  for (const node of sim.nodes) node.start();
  const clock = sim.clock;
  let t = await clock.run(5 * SEC); // links up, trees not yet formed

  // Writers: each node at `rate`, staggered.
  let writing = true;
  const everyMs = SEC / plan.rate;
  for (const node of sim.nodes) {
    clock.after((node.index / plan.nodes) * everyMs, () => {
      const stop = clock.every(everyMs, () => {
        if (!writing) return stop();
        if (node.alive) void node.write({ n: node.index, t: clock.now() });
      });
    });
  }
  // A first stretch forms the trees; the steady numbers are from after it.
  t = await clock.run(t + plan.warmupMs);
  const at = { written: sim.written, bytes: sim.traffic.bytes, duplicates: sim.duplicates(), writtenBytes: sim.writtenBytes, grafts: sim.counter('mesh.tree.grafts'), prunes: sim.counter('mesh.tree.pruned'), byType: snapshot(sim.traffic.byType) };
  t = await clock.run(t + plan.steadyMs);
  // Let the last writes of the stretch arrive before counting.
  const steadyWritten = sim.written - at.written;
  const steadyBytes = sim.traffic.bytes - at.bytes;
  const steadyDuplicates = sim.duplicates() - at.duplicates;
  const byType = Object.fromEntries(Object.entries(sim.traffic.byType).map(([k, v]) => [k, (v.bytes - (at.byType[k] ?? 0)) / Math.max(1, steadyWritten) / plan.nodes]));
  const steady = {
    written: steadyWritten,
    duplicatesPerEntry: steadyDuplicates / Math.max(1, steadyWritten),
    duplicatesPerDelivery: steadyDuplicates / Math.max(1, steadyWritten * (plan.nodes - 1)),
    bytesPerNodePerEntry: steadyBytes / Math.max(1, steadyWritten) / plan.nodes,
    bytesPerEntryByType: byType,
    entryBytes: (sim.writtenBytes - at.writtenBytes) / Math.max(1, steadyWritten),
    grafts: sim.counter('mesh.tree.grafts') - at.grafts,
    prunes: sim.counter('mesh.tree.pruned') - at.prunes,
  };
  progress(`sim ${plan.nodes} nodes: steady: ${steadyWritten} entries, ${steady.duplicatesPerEntry.toFixed(2)} duplicates per entry, ${steady.bytesPerNodePerEntry.toFixed(0)} B per node per entry (${steady.entryBytes.toFixed(0)} B entries)`);

  // Partition: two halves keep writing; some nodes go down (churn).
  const half = Math.floor(plan.nodes / 2);
  sim.partition((node) => (node.index < half ? 0 : 1));
  const down = sim.nodes.filter((node) => node.index % Math.max(1, Math.round(1 / (plan.churn ?? 0))) === 1 && (plan.churn ?? 0) > 0);
  for (const node of down) sim.setAlive(node, false);
  t = await clock.run(t + plan.partitionMs);
  writing = false;
  t = await clock.run(t + 5 * SEC); // each side settles
  const missing = missingAtHeal(sim);
  const bytesAtHeal = sim.traffic.bytes;
  sim.heal();
  for (const node of down) sim.setAlive(node, true);
  const healedAt = t;
  let convergedAt: number | undefined;
  while (t < healedAt + plan.convergeTimeoutMs) {
    t = await clock.run(t + 500);
    if (sim.converged()) { convergedAt = t; break; }
  }
  const heal = {
    missingEntries: missing.entries,
    convergedMs: convergedAt === undefined ? undefined : convergedAt - healedAt,
    bytesPerMissingEntryBytes: (sim.traffic.bytes - bytesAtHeal) / Math.max(1, missing.bytes),
    written: sim.written,
  };
  progress(`sim ${plan.nodes} nodes: heal: ${missing.entries} entries missing, converged ${heal.convergedMs === undefined ? 'NOT within the timeout' : `${(heal.convergedMs / SEC).toFixed(1)} s`} after, ${heal.bytesPerMissingEntryBytes.toFixed(2)}x the missing bytes sent`);
  collect();
  const heapPerNodeBytes = (process.memoryUsage().heapUsed - heapBefore) / plan.nodes;
  for (const node of sim.nodes) node.stop();
  return { plan, edges, diameter, steady, heal, heapPerNodeBytes, events: clock.events, wallMs: performance.now() - started };
}

function snapshot(byType: Record<string, { bytes: number }>): Record<string, number> {
  return Object.fromEntries(Object.entries(byType).map(([k, v]) => [k, v.bytes]));
}

/** Entries the live nodes lack of each other at the heal, and their bytes (an entry's encoded size, as the writer made it). */
function missingAtHeal(sim: MeshSim): { entries: number; bytes: number } {
  const perEntry = sim.writtenBytes / Math.max(1, sim.written);
  let entries = 0;
  const heads = sim.nodes.map((n) => n.store.head(n.id).seq);
  for (const node of sim.nodes) {
    for (const [i, origin] of sim.nodes.entries()) entries += Math.max(0, (heads[i] ?? 0) - node.store.head(origin.id).seq);
  }
  return { entries, bytes: entries * perEntry };
}
