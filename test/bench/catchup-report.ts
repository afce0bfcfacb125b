/**
 * The mesh catch-up benchmark's report (catchup.ts measures): the rows of
 * each run and, with a baseline checkout (--baseline), a table per size of
 * ours against it: the bytes ratios, time to converge, CPU per entry
 * received and RSS, with now/before ratios (per repeat, median (min–max)).
 */
import { KiB, type CatchupResults, type CatchupRun } from './catchup.js';
import { renderCompare, type CompareRow } from './compare.js';
import { simRows } from './sim-report.js';
import { ratio, summarize } from './stats.js';
import type { Row } from './table.js';

const one = (value: number | undefined) => summarize(value === undefined ? [] : [value]);

export function catchupRows(results: CatchupResults): Row[] {
  const { plan } = results;
  const rows: Row[] = [];
  const repeats = plan.repeats ?? 1;
  for (const r of results.runs) {
    const t = r.topology;
    const section = `mesh catch-up, ${r.nodes} nodes${r.threads && r.threads > 1 ? ` (${r.threads} threads)` : ''}, ${t.name}, split ${t.split}|${r.nodes - t.split} (${t.crossEdges} links cut), ${plan.partitionMs / 1000} s partition at ${plan.ratePerNode} entries/s per node${repeats > 1 ? `, run ${r.repeat + 1} of ${repeats}` : ''}`;
    const missing = r.missing;
    const c = r.catchup;
    if (!missing || !c) {
      rows.push({ section, metric: `FAILED before the heal: ${r.failure ?? 'unknown'}`.slice(0, 160), unit: '—', summary: undefined });
      continue;
    }
    const missingKiB = { label: 'KiB missing at heal', value: missing.bytes / KiB };
    const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? Number.NaN : ms / 1000);
    const timeout = plan.convergeTimeoutMs / 1000;
    const w = r.writing;
    const pc = r.partition?.counters;
    rows.push(
      { section, metric: 'during the partition: entries written per node', unit: '/s', summary: one(w?.achievedPerNodePerS), reference: { label: '/s planned', value: plan.ratePerNode } },
      { section, metric: 'during the partition: duplicate entries received per entry written (live gossip)', unit: 'x', summary: one(pc && w ? ratio(pc['feeds.duplicate'] ?? 0, w.written) : undefined), target: { on: 'median', max: 1.5, text: '≤ 1.5 (issue 16)' } },
      r.ok
        ? { section, metric: 'converged: heal -> every node holds every entry', unit: 's', summary: one(seconds(r.convergeMs)), target: { on: 'median', max: timeout, text: `< ${timeout} s (timeout)` } }
        : { section, metric: `NOT converged: ${r.failure ?? ''}`.slice(0, 120), unit: 's', summary: one(seconds(r.waitedMs)), target: { on: 'median', max: timeout, text: `< ${timeout} s (timeout)` } },
      { section, metric: 'per node: heal -> holds every entry', unit: 's', summary: summarize((r.perNodeMs ?? []).map(seconds)) },
      { section, metric: 'per cut link: heal -> first bytes through (reconnect backoff)', unit: 's', summary: summarize((r.reconnectMs ?? []).map(seconds)) },
      { section, metric: 'heal -> first cut pair back both ways', unit: 's', summary: one(Number.isFinite(r.firstPairMs) ? seconds(r.firstPairMs) : undefined) },
      { section, metric: 'catch-up payload sent (mesh.catchup_bytes_sent)', unit: 'KiB', summary: one(c.payloadBytes / KiB), reference: missingKiB, target: { on: 'ratio', max: 1.5, text: '≤ 1.5x missing (issue 16)' } },
      { section, metric: 'all bytes through the link proxies (MQTT, both ways)', unit: 'KiB', summary: one(c.wireBytes / KiB), reference: missingKiB, target: { on: 'ratio', max: 1.5, text: '≤ 1.5x missing (issue 16)' } },
      { section, metric: 'catch-up entries sent (mesh.catchup_entries_sent)', unit: 'entries', summary: one(c.entriesSent), reference: { label: 'entries missing', value: missing.entries } },
      { section, metric: 'duplicate entries received (feeds.duplicate)', unit: 'entries', summary: one(c.duplicates) },
      { section, metric: 'entries missing per node at heal', unit: 'entries', summary: summarize(missing.perNodeEntries) },
      { section, metric: 'CPU (process running the nodes) from heal, per node', unit: 'ms', summary: one(r.cpuMs === undefined ? undefined : r.cpuMs / r.nodes) },
      { section, metric: 'RSS of the process running all the nodes, at convergence', unit: 'MB', summary: one(r.rss?.convergedMB), reference: r.rss ? { label: 'MB before the nodes started', value: r.rss.beforeMB } : undefined },
      { section, metric: 'per node: RSS / nodes', unit: 'MB', summary: one(r.rss ? r.rss.convergedMB / r.nodes : undefined) },
      { section, metric: 'per node: (RSS - RSS before the nodes) / nodes', unit: 'MB', summary: one(r.rss ? (r.rss.convergedMB - r.rss.beforeMB) / r.nodes : undefined) },
      { section, metric: 'peak RSS (VmHWM) of that process', unit: 'MB', summary: one(r.rss?.peakMB) },
    );
  }
  // The sizes too many for real nodes here, from the simulation: labelled so, never mistaken for real nodes.
  return [...rows, ...simRows(results.simulated, (nodes) => `mesh catch-up, ${nodes} nodes, SIMULATED, not real nodes`)];
}

// ---- ours against a baseline checkout ----

/** Entries that reached a node's feed store, whatever came of them: applied, duplicate, gap, fork, refused, rejected. */
export function entriesReceived(counters: Record<string, number> | undefined): number {
  if (!counters) return Number.NaN;
  return Object.entries(counters)
    .filter(([name]) => /^feeds\.(applied|duplicate|gap|fork|refused)$/.test(name) || name.startsWith('feeds.rejected.'))
    .reduce((sum, [, v]) => sum + v, 0);
}

interface Metric {
  readonly metric: string;
  readonly unit: string;
  readonly value: (r: CatchupRun) => number;
  /** No now/before ratio (counts whose ratio says nothing). */
  readonly plain?: boolean;
  /** Shown as whole numbers. */
  readonly count?: boolean;
}

const seconds = (ms: number | undefined) => (ms === undefined ? Number.NaN : ms / 1000);

const METRICS: readonly Metric[] = [
  { metric: 'converged: heal -> every node holds every entry', unit: 's', value: (r) => (r.ok ? seconds(r.convergeMs) : Number.NaN) },
  { metric: 'catch-up payload / bytes missing at heal (target ≤ 1.5x)', unit: 'x', value: (r) => ratio(r.catchup?.payloadBytes ?? Number.NaN, r.missing?.bytes ?? 0) },
  { metric: 'all bytes through the link proxies / bytes missing (target ≤ 1.5x)', unit: 'x', value: (r) => ratio(r.catchup?.wireBytes ?? Number.NaN, r.missing?.bytes ?? 0) },
  { metric: 'bytes missing at heal', unit: 'KiB', value: (r) => (r.missing?.bytes ?? Number.NaN) / KiB, plain: true, count: true },
  { metric: 'catch-up entries sent / entries missing', unit: 'x', value: (r) => ratio(r.catchup?.entriesSent ?? Number.NaN, r.missing?.entries ?? 0) },
  { metric: 'entries received from the heal on (all nodes)', unit: 'entries', value: (r) => entriesReceived(r.catchup?.counters), plain: true, count: true },
  { metric: 'duplicate entries received from the heal on', unit: 'entries', value: (r) => r.catchup?.duplicates ?? Number.NaN, plain: true, count: true },
  { metric: 'CPU per entry received, from the heal (whole process)', unit: 'µs', value: (r) => ratio((r.cpuMs ?? Number.NaN) * 1000, entriesReceived(r.catchup?.counters)) },
  { metric: 'CPU per entry received, partition (live gossip + own writes)', unit: 'µs', value: (r) => ratio((r.partition?.cpuMs ?? Number.NaN) * 1000, entriesReceived(r.partition?.counters)) },
  { metric: 'CPU from the heal, per node', unit: 'ms', value: (r) => (r.cpuMs ?? Number.NaN) / r.nodes },
  { metric: 'RSS of the process running all the nodes, at convergence', unit: 'MB', value: (r) => r.rss?.convergedMB ?? Number.NaN },
  { metric: 'peak RSS (VmHWM) of that process', unit: 'MB', value: (r) => r.rss?.peakMB ?? Number.NaN },
];

/** Per size: each metric for ours and the baseline, over the repeats, and now/before. */
export function catchupCompareRows(results: CatchupResults): CompareRow[] {
  const before = results.baseline?.runs;
  if (!before) return [];
  const { plan } = results;
  const rows: CompareRow[] = [];
  for (const n of plan.sizes) {
    const ours = results.runs.filter((r) => r.nodes === n);
    const theirs = before.filter((r) => r.nodes === n);
    if (ours.length === 0 && theirs.length === 0) continue;
    const converged = (list: readonly CatchupRun[]) => `${list.filter((r) => r.ok).length}/${list.length} converged`;
    const section = `${n} nodes, ${plan.partitionMs / 1000} s partition at ${plan.ratePerNode} entries/s per node; now ${converged(ours)}, ${results.baseline?.label ?? 'before'} ${converged(theirs)}`;
    for (const m of METRICS) {
      const pairs = ours.flatMap((o) => {
        const t = theirs.find((x) => x.repeat === o.repeat);
        return t ? [ratio(m.value(o), m.value(t))] : [];
      });
      rows.push({ section, metric: m.metric, unit: m.unit, now: summarize(ours.map(m.value)), before: summarize(theirs.map(m.value)), nowBefore: m.plain ? undefined : summarize(pairs), ...(m.count ? { count: true } : {}) });
    }
  }
  return rows;
}

export function renderCatchupCompare(results: CatchupResults): string {
  const label = results.baseline?.label ?? 'before';
  const repeats = results.plan.repeats ?? 1;
  const title = `mesh catch-up: now vs ${label} (its own catchup-child.js, same plan), taking turns run by run in the same process tree; ${repeats > 1 ? `median (min–max) of ${repeats} runs each; now/before per pair of runs` : 'one run each'}; entries received: feeds.applied + duplicate + gap + fork + refused + rejected.*, summed over the nodes; CPU: the whole process running the nodes`;
  return renderCompare(title, label, catchupCompareRows(results));
}
