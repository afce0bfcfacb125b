/** The result rows and their plain-text table (stdout), kept apart from how they are measured. */
import type { Summary } from './stats.js';

export interface Target {
  /** What the target bounds: the ratio to the reference, or the median itself. */
  readonly on: 'ratio' | 'median';
  readonly max: number;
  readonly text: string;
}

export interface Row {
  readonly section: string;
  readonly metric: string;
  readonly unit: string;
  readonly summary: Summary | undefined;
  readonly reference?: { readonly label: string; readonly value: number };
  readonly target?: Target;
}

export interface RowResult extends Row {
  readonly ratio: number | undefined;
  readonly met: boolean | undefined;
}

export function evaluate(input: Row): RowResult {
  // A reference that could not be measured (e.g. no records in the span) is shown as none.
  const row = input.reference && !Number.isFinite(input.reference.value) ? { ...input, reference: undefined } : input;
  const median = row.summary?.median;
  const ratio = median !== undefined && row.reference && row.reference.value !== 0 ? median / row.reference.value : undefined;
  const checked = row.target?.on === 'ratio' ? ratio : median;
  const met = row.target && checked !== undefined && Number.isFinite(checked) ? checked <= row.target.max : undefined;
  return { ...row, ratio, met };
}

export function formatNumber(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

export function renderTable(rows: readonly RowResult[]): string {
  const header = ['metric', 'unit', 'n', 'median', 'min–max', 'reference', 'ratio', 'target', ''];
  const lines: string[][] = [];
  const sections: number[] = [];
  let section = '';
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      sections.push(lines.length);
      lines.push([`[${section}]`]);
    }
    const s = row.summary;
    lines.push([
      row.metric,
      row.unit,
      s ? String(s.n) : '0',
      formatNumber(s?.median),
      s ? `${formatNumber(s.min)}–${formatNumber(s.max)}` : '—',
      row.reference ? `${formatNumber(row.reference.value)} ${row.reference.label}` : '—',
      row.ratio === undefined ? '—' : `${formatNumber(row.ratio)}x`,
      row.target?.text ?? '—',
      row.met === undefined ? '' : row.met ? 'ok' : 'MISSED',
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.filter((_, j) => !sections.includes(j)).map((l) => (l[i] ?? '').length)));
  // Numbers right-aligned, text left-aligned.
  const right = new Set([2, 3, 4, 6]);
  const render = (cells: readonly string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((sum, w) => sum + w + 2, -2));
  return [render(header), rule, ...lines.map((l, j) => (sections.includes(j) ? l[0] ?? '' : render(l)))].join('\n');
}

/** Plain columns: a header, a rule, the lines; `right`: the columns aligned right. */
export function columns(header: readonly string[], lines: readonly (readonly string[])[], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const render = (cells: readonly string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [render(header), '-'.repeat(widths.reduce((sum, w) => sum + w + 2, -2)), ...lines.map(render)];
}
