/**
 * Issue 16's single-node budgets, each met or missed in the same run as its
 * reference: cold start to the first reading at most 5x `node -e 0`, and RSS
 * at most 110 MB after 60 s, for the shipped default config (every default
 * extension on), run with the flags of the .deb's service (service-flags.ts).
 */
import { pairedRatios } from './compare.js';
import type { StartupResults } from './startup.js';
import type { SteadyResults } from './steady.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

export const START_BUDGET_X = 5;
export const RSS_BUDGET_MB = 110;
/** The RSS budget is read this long after the spawn (a --quick run reads earlier, and has no target). */
export const RSS_BUDGET_AT_MS = 60_000;
const MB = 1024; // KiB per MiB

export function budgetRows(startup: StartupResults | undefined, sessions: readonly SteadyResults[], durationMs: number, nodeFlags: readonly string[]): Row[] {
  const section = `budgets (issue 16): shipped default config, every default extension on, node ${nodeFlags.length > 0 ? nodeFlags.join(' ') : 'without flags'}`;
  const rows: Row[] = [];
  if (startup) {
    const noop = summarize(startup.noopMs);
    const target = { on: 'ratio', max: START_BUDGET_X, text: `≤ ${START_BUDGET_X}x node -e 0` } as const;
    rows.push(
      { section, metric: 'cold start to the first reading on MQTT', unit: 'ms', summary: summarize(startup.cold.map((r) => r.firstReadingMs)), ...(noop ? { reference: { label: 'ms node -e 0 (median)', value: noop.median } } : {}), target },
      // The same start over the `node -e 0` of its own round: the two saw the same machine load.
      { section, metric: 'the same, per round: ÷ that round\'s node -e 0', unit: 'x', summary: pairedRatios(startup.cold.map((r) => r.firstReadingMs), startup.noopMs), target: { on: 'median', max: START_BUDGET_X, text: `≤ ${START_BUDGET_X}x` } },
    );
  }
  if (sessions.length > 0) {
    const seconds = (durationMs / 1000).toFixed(0);
    const idle = summarize(sessions.map((s) => s.idle.memory.rssKiB / MB));
    const rssAt = (speed: number) => summarize(sessions.flatMap((s) => s.nodes.filter((n) => n.speed === speed).map((n) => n.memory.rssKiB / MB)));
    const reference = idle ? { reference: { label: 'MB idle node', value: idle.median } } : {};
    const target = durationMs === RSS_BUDGET_AT_MS ? { target: { on: 'median', max: RSS_BUDGET_MB, text: `≤ ${RSS_BUDGET_MB} MB` } as const } : {};
    rows.push(
      { section, metric: `RSS at ${seconds} s, speed 1 (the shipped config)${target.target ? '' : ` (the budget is at ${RSS_BUDGET_AT_MS / 1000} s)`}`, unit: 'MB', summary: rssAt(1), ...reference, ...target },
      { section, metric: `RSS at ${seconds} s, speed 60 (60x the workload)`, unit: 'MB', summary: rssAt(60), ...reference },
    );
  }
  return rows;
}
