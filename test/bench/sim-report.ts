/** The rows of `npm run bench -- --only sim`. */
import type { ScenarioResult } from '../sim/scenario.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

/** `title`: how a section begins (the catch-up table names its simulated sizes as such). */
export function simRows(results: readonly ScenarioResult[], title = (nodes: number) => `mesh simulation, ${nodes} nodes`): Row[] {
  return results.flatMap((r) => {
    const { plan, steady, heal } = r;
    const section = `${title(plan.nodes)} (test/sim: the real gossip code on a simulated clock and network), random mesh of degree ${plan.degree} (${r.edges} links, diameter ${r.diameter}), ${plan.network.latencyMs}+${plan.network.jitterMs} ms per hop, loss ${plan.network.loss}; ${plan.rate} entries/s per node; partition ${plan.partitionMs / 1000} s with ${Math.round((plan.churn ?? 0) * 100)}% of nodes down`;
    return [
      { section, metric: 'steady state: duplicate entries received per entry written (mesh-wide)', unit: 'x', summary: summarize([steady.duplicatesPerEntry]), target: { on: 'median' as const, max: 1.5, text: '≤ 1.5' } },
      { section, metric: 'steady state: bytes sent per node per entry', unit: 'B', summary: summarize([steady.bytesPerNodePerEntry]), reference: { label: 'the entry', value: steady.entryBytes } },
      { section, metric: 'steady state: grafts and prunes per entry written (tree churn)', unit: 'x', summary: summarize([(steady.grafts + steady.prunes) / Math.max(1, steady.written)]) },
      { section, metric: 'after the heal: bytes sent per missing byte', unit: 'x', summary: summarize([heal.bytesPerMissingEntryBytes]), target: { on: 'median' as const, max: 1.5, text: '≤ 1.5' } },
      { section, metric: `after the heal: every node holds every entry (${heal.missingEntries} were missing)`, unit: 's', summary: heal.convergedMs === undefined ? undefined : summarize([heal.convergedMs / 1000]) },
      { section, metric: 'heap per simulated node (gossip state and its share of the entries)', unit: 'KiB', summary: summarize([r.heapPerNodeBytes / 1024]) },
      { section, metric: 'wall time of the run', unit: 's', summary: summarize([r.wallMs / 1000]) },
    ];
  });
}
