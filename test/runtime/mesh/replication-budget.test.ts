/** The eviction choice of maxFeedBytes: fair by owner first, so minting origins buys no larger share. */
import { describe, expect, it } from 'vitest';
import { chooseEviction, type FeedUsage } from '../../../runtime/mesh/replication-budget.js';

const feed = (origin: string, owner: string | undefined, bytes: number, droppable = bytes / 2): FeedUsage => ({ origin, owner, bytes, droppable });

describe('chooseEviction', () => {
  it('takes from the owner using the most, even when another owner has the largest single origin', () => {
    const sybils = ['s1', 's2', 's3', 's4', 's5'].map((o, i) => feed(o, 'mallory', 300_000 + i));
    expect(chooseEviction([feed('honest', 'ana', 500_000), ...sybils])).toBe('s5');
  });

  it('skips what cannot be dropped, and gives undefined when nothing can', () => {
    expect(chooseEviction([feed('big', 'a', 900_000, 0), feed('small', 'b', 100_000)])).toBe('small');
    expect(chooseEviction([feed('big', 'a', 900_000, 0)])).toBeUndefined();
  });

  it('picks alike on every node: ties go to the smaller id', () => {
    expect(chooseEviction([feed('b2', 'b', 100), feed('a2', 'a', 100), feed('a1', 'a', 0, 0)])).toBe('a2');
    expect(chooseEviction([feed('x', undefined, 100), feed('w', undefined, 100)])).toBe('w');
  });
});
