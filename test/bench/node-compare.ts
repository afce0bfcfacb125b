/**
 * With --baseline: the start-up and steady-state figures of our node against
 * the baseline checkout's node (startup.ts and steady.ts measure them taking
 * turns), as now/before tables (compare.ts).
 */
import { compareRow, renderCompare, type CompareRow } from './compare.js';
import { ratio } from './stats.js';
import type { StartRun, StartupResults } from './startup.js';
import { ioCounter, messages, recorded, span, type NodeRun, type Sample, type SteadyResults, type SteadyTurns } from './steady.js';

const MB = 1024; // KiB per MiB, for /proc's kB figures

export function startupCompareRows(s: StartupResults): CompareRow[] {
  const b = s.baseline;
  if (!b) return [];
  const section = `start-up, each checkout's shipped default config (speed 1), ms from spawn; ${s.cold.length} round${s.cold.length === 1 ? '' : 's'}: node -e 0, then each checkout cold and warm, who goes first swapped every round`;
  const row = (metric: string, pick: (side: { cold: StartRun[]; warm: StartRun[] }) => number[]) => compareRow(section, metric, 'ms', pick(s), pick(b));
  return [
    row('cold: first reading on MQTT (new data dir)', (x) => x.cold.map((r) => r.firstReadingMs)),
    row('warm: first reading on MQTT (existing dir)', (x) => x.warm.map((r) => r.firstReadingMs)),
    row('cold: "MQTT broker:" line on stdout', (x) => x.cold.map((r) => r.brokerLineMs)),
    row('warm: "MQTT broker:" line on stdout', (x) => x.warm.map((r) => r.brokerLineMs)),
    compareRow(section, 'node -e 0, spawn to exit (for scale, once a round)', 'ms', s.noopMs, [], { plain: true }),
    // CPU time used, not wall time: what other processes on the machine do sways it much less.
    row('cold: CPU used by the first reading (user + system)', (x) => x.cold.map((r) => r.cpuAtFirstReadingMs ?? Number.NaN)),
    row('warm: CPU used by the first reading', (x) => x.warm.map((r) => r.cpuAtFirstReadingMs ?? Number.NaN)),
    row('cold: CPU used by the "MQTT broker:" line', (x) => x.cold.map((r) => r.cpuAtBrokerLineMs ?? Number.NaN)),
    row('warm: CPU used by the "MQTT broker:" line', (x) => x.warm.map((r) => r.cpuAtBrokerLineMs ?? Number.NaN)),
  ];
}

interface SteadyMetric {
  readonly metric: string;
  readonly unit: string;
  readonly value: (run: NodeRun) => number;
  readonly plain?: boolean;
  readonly count?: boolean;
}

/** Each per-reading figure is over the whole measured span of a session (first to last sample), one value per session. */
function steadyMetrics(counter: 'writeBytes' | 'wchar'): SteadyMetric[] {
  const per = (run: NodeRun, pick: (s: Sample) => number, by: (s: Sample) => number, scale = 1) => ratio(span(run.samples, pick) * scale, span(run.samples, by));
  return [
    { metric: 'RSS (VmRSS) at the end', unit: 'MB', value: (r) => r.memory.rssKiB / MB },
    { metric: 'peak RSS (VmHWM)', unit: 'MB', value: (r) => r.memory.hwmKiB / MB },
    { metric: 'CPU per reading', unit: 'µs', value: (r) => per(r, (s) => s.cpuMs, (s) => s.counts.readings, 1000) },
    { metric: 'CPU per published message', unit: 'µs', value: (r) => per(r, (s) => s.cpuMs, messages, 1000) },
    { metric: 'CPU load', unit: 'ms/s', value: (r) => per(r, (s) => s.cpuMs, (s) => s.atMs, 1000) },
    { metric: 'readings published (same workload?)', unit: '/s', value: (r) => per(r, (s) => s.counts.readings, (s) => s.atMs, 1000) },
    { metric: `disk writes per record (${counter === 'writeBytes' ? 'write_bytes' : 'wchar'})`, unit: 'B', value: (r) => per(r, (s) => s.io[counter], recorded) },
    { metric: 'state.json writes in the span', unit: 'writes', value: (r) => span(r.samples, (s) => s.stateWrites), plain: true, count: true },
  ];
}

export function steadyCompareRows(turns: SteadyTurns, durationMs: number): CompareRow[] {
  const all = [...turns.now, ...turns.before];
  const counter = ioCounter(all.flatMap((s) => s.nodes));
  const rows: CompareRow[] = [];
  for (const speed of [60, 1]) {
    const runs = (sessions: readonly SteadyResults[]) => sessions.flatMap((s) => s.nodes.filter((n) => n.speed === speed));
    const section = `steady state, speed ${speed}, ${turns.now.length} session${turns.now.length === 1 ? '' : 's'} each of ${durationMs / 1000} s (RSS read at the end); per-reading figures over each session's measured span`;
    for (const m of steadyMetrics(counter)) {
      rows.push(compareRow(section, m.metric, m.unit, runs(turns.now).map(m.value), runs(turns.before).map(m.value), { ...(m.plain ? { plain: true } : {}), ...(m.count ? { count: true } : {}) }));
    }
  }
  // The same idle `node -e` process beside each session: a ratio away from 1 here is the machine's drift.
  const section = 'control: the idle Node.js process run beside each session (the same program for both)';
  const idleLoad = (s: SteadyResults) => ratio(((s.idle.cpuMs.at(-1) ?? Number.NaN) - (s.idle.cpuMs[0] ?? Number.NaN)) * 1000, (s.idle.atMs.at(-1) ?? Number.NaN) - (s.idle.atMs[0] ?? Number.NaN));
  rows.push(
    compareRow(section, 'idle process RSS', 'MB', turns.now.map((s) => s.idle.memory.rssKiB / MB), turns.before.map((s) => s.idle.memory.rssKiB / MB)),
    compareRow(section, 'idle process CPU load', 'ms/s', turns.now.map(idleLoad), turns.before.map(idleLoad)),
  );
  return rows;
}

export function renderStartupCompare(s: StartupResults): string {
  const label = s.baseline?.label ?? 'before';
  return renderCompare(`start-up: now vs ${label} (its own dist/apiary.mjs start), taking turns round by round; median (min–max); now/before per round`, label, startupCompareRows(s));
}

export function renderSteadyCompare(turns: SteadyTurns, durationMs: number): string {
  return renderCompare(`steady state: now vs ${turns.label} (its own dist/apiary.mjs start, speed 60 and speed 1 side by side), sessions taking turns one checkout at a time; median (min–max) over the sessions; now/before per pair of sessions`, turns.label, steadyCompareRows(turns, durationMs));
}
