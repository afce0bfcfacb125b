/**
 * Ours ("now") against a baseline checkout ("before", --baseline): the rows
 * of a comparison table and its text, shared by the catch-up, start-up and
 * steady-state reports. The two checkouts take turns run by run, so now/before
 * is taken per pair of runs and summarized as median (min–max).
 */
import { ratio, summarize, type Summary } from './stats.js';
import { columns, formatNumber } from './table.js';

export interface CompareRow {
  readonly section: string;
  readonly metric: string;
  readonly unit: string;
  readonly now: Summary | undefined;
  readonly before: Summary | undefined;
  /** now / before per pair of runs (they took turns), median (min–max). */
  readonly nowBefore: Summary | undefined;
  /** Shown as whole numbers. */
  readonly count?: boolean;
}

/** now[i] / before[i] for each pair of runs both have. */
export function pairedRatios(now: readonly number[], before: readonly number[]): Summary | undefined {
  const n = Math.min(now.length, before.length);
  return summarize(Array.from({ length: n }, (_, i) => ratio(now[i] as number, before[i] as number)));
}

/** A row from the values of each checkout's runs, in the order they were paired; `plain`: no ratio (counts whose ratio says nothing). */
export function compareRow(section: string, metric: string, unit: string, now: readonly number[], before: readonly number[], options: { plain?: boolean; count?: boolean } = {}): CompareRow {
  return { section, metric, unit, now: summarize(now), before: summarize(before), nowBefore: options.plain ? undefined : pairedRatios(now, before), ...(options.count ? { count: true } : {}) };
}

export function compareCell(s: Summary | undefined, suffix = '', whole = false): string {
  if (!s) return '—';
  const f = (v: number) => (whole ? String(Math.round(v)) : formatNumber(v));
  return s.n > 1 ? `${f(s.median)}${suffix} (${f(s.min)}–${f(s.max)})` : `${f(s.median)}${suffix}`;
}

/** `title` in brackets, then the table, each section's name in parentheses before its rows. */
export function renderCompare(title: string, label: string, rows: readonly CompareRow[]): string {
  if (rows.length === 0) return '';
  const out = ['', `[${title}]`];
  let section = '';
  const lines: string[][] = [];
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      lines.push([`(${section})`]);
    }
    lines.push([r.metric, r.unit, compareCell(r.now, '', r.count), compareCell(r.before, '', r.count), r.nowBefore ? compareCell(r.nowBefore, 'x') : '—']);
  }
  const header = ['metric', 'unit', 'now', `before (${label})`, 'now/before'];
  const table = columns(header, lines.filter((l) => l.length > 1), new Set([2, 3, 4]));
  // The header and rule, then each section's name (unpadded) before its rows.
  out.push(...table.slice(0, 2));
  let k = 2;
  for (const l of lines) out.push((l.length === 1 ? l[0] : table[k++]) ?? '');
  return out.join('\n');
}
