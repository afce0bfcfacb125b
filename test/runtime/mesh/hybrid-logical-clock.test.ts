import { describe, expect, it } from 'vitest';
import { compareHlc, HybridLogicalClock, MAX_HLC_COUNTER } from '../../../runtime/mesh/hybrid-logical-clock.js';

describe('HybridLogicalClock', () => {
  it('follows wall time, and never goes backwards when the wall clock does', () => {
    let wall = 1000;
    const clock = new HybridLogicalClock(() => wall);
    expect(clock.now()).toEqual({ l: 1000, c: 0 });
    expect(clock.now()).toEqual({ l: 1000, c: 1 });
    wall = 500; // NTP stepped the clock back
    const t = clock.now();
    expect(t).toEqual({ l: 1000, c: 2 });
    wall = 2000;
    expect(clock.now()).toEqual({ l: 2000, c: 0 });
  });

  it('orders a received event after the remote one, even from a clock that is ahead', () => {
    let wall = 1000;
    const clock = new HybridLogicalClock(() => wall, 60_000);
    const remote = { l: 5000, c: 3 };
    const mine = clock.receive(remote);
    expect(compareHlc(mine, remote)).toBeGreaterThan(0);
    expect(mine).toEqual({ l: 5000, c: 4 });
    wall = 6000;
    expect(clock.now()).toEqual({ l: 6000, c: 0 });
  });

  it('refuses a remote time too far in the future instead of jumping to it', () => {
    const clock = new HybridLogicalClock(() => 1000, 60_000);
    expect(() => clock.receive({ l: 1000 + 61_000, c: 0 })).toThrow(/ahead of ours/);
    expect(clock.current).toEqual({ l: 0, c: 0 });
  });

  it('carries counter overflow into the next millisecond', () => {
    const clock = new HybridLogicalClock(() => 10, 60_000, { l: 10, c: MAX_HLC_COUNTER });
    expect(clock.now()).toEqual({ l: 11, c: 0 });
  });
});
