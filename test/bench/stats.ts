/** Small statistics for benchmark samples: few runs, so median and range, no mean/stddev. */

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Summary of the finite values; undefined when there are none (e.g. no readings in any window). */
export function summarize(values: readonly number[]): Summary | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return undefined;
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { n, median, min: sorted[0] as number, max: sorted[n - 1] as number };
}

/** a / b, or NaN when b is 0 (a window without readings has no per-reading cost). */
export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}

/** Differences between consecutive elements of a series, by a chosen field. */
export function deltas<T>(series: readonly T[], pick: (item: T) => number): number[] {
  const out: number[] = [];
  for (let i = 1; i < series.length; i += 1) out.push(pick(series[i] as T) - pick(series[i - 1] as T));
  return out;
}
