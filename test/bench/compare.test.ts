/** The now/before rows and table the bench prints with --baseline (compare.ts): pure functions, so tested directly. */
import { describe, expect, it } from 'vitest';
import { compareRow, pairedRatios, renderCompare } from './compare.js';

describe('bench comparison with a baseline', () => {
  it('takes now/before per pair of runs, not as a ratio of the medians', () => {
    // Medians 20 and 20 (ratio 1), but each run of ours took twice its partner's time.
    const s = pairedRatios([10, 20, 40], [5, 10, 20]);
    expect(s).toEqual({ n: 3, median: 2, min: 2, max: 2 });
  });

  it('leaves out runs without a partner and values that are not numbers', () => {
    expect(pairedRatios([10, Number.NaN, 30, 99], [10, 10, 10])).toEqual({ n: 2, median: 2, min: 1, max: 3 });
    expect(pairedRatios([1, 2], [])).toBeUndefined();
  });

  it('gives a plain row (a count) no ratio', () => {
    const row = compareRow('s', 'writes', 'writes', [3, 4], [1, 2], { plain: true, count: true });
    expect(row.nowBefore).toBeUndefined();
    expect(row.count).toBe(true);
    expect(row.before).toEqual({ n: 2, median: 1.5, min: 1, max: 2 });
  });

  it('renders each section once, then its rows with median (min–max) and the ratio', () => {
    const rows = [
      compareRow('speed 60', 'CPU per reading', 'µs', [110, 120, 130], [100, 100, 100]),
      compareRow('speed 60', 'RSS', 'MB', [148], [150]),
      compareRow('speed 1', 'state writes', 'writes', [2.4], [3], { plain: true, count: true }),
    ];
    const lines = renderCompare('title', 'abc1234', rows).split('\n');
    expect(lines[1]).toBe('[title]');
    expect(lines[2]).toMatch(/^metric +unit +now +before \(abc1234\) +now\/before$/);
    expect(lines.filter((l) => l === '(speed 60)')).toHaveLength(1);
    expect(lines.find((l) => l.startsWith('CPU per reading'))).toMatch(/120 \(110–130\) +100 \(100–100\) +1\.20x \(1\.10–1\.30\)$/);
    expect(lines.find((l) => l.startsWith('RSS'))).toMatch(/148 +150 +0\.99x$/);
    expect(lines.find((l) => l.startsWith('state writes'))).toMatch(/ 2 +3 +—$/);
    expect(renderCompare('title', 'abc1234', [])).toBe('');
  });
});
