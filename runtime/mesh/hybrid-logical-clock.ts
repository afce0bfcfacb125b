/**
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks",
 * OPODIS 2014). Timestamps stay close to wall time, yet never go backwards
 * and always order an event after everything its node had seen, even when
 * board clocks drift (a Pi has no RTC: after a power cut it may boot in 1970
 * until NTP answers, or never, offline).
 *
 * A remote time too far ahead of ours is refused, not adopted: otherwise one
 * bad clock (or a forged entry) would drag every node's clock into the future.
 */
import { ApiaryError, ErrorCodes } from '../errors.js';

export interface HlcTimestamp {
  /** Logical wall time, ms since the epoch. */
  readonly l: number;
  /** Counter for events within the same `l`. */
  readonly c: number;
}

export const MAX_HLC_COUNTER = 0xffff;

export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.l !== b.l ? a.l - b.l : a.c - b.c;
}

export function isHlcTimestamp(value: unknown): value is HlcTimestamp {
  if (value === null || typeof value !== 'object') return false;
  const { l, c } = value as Record<string, unknown>;
  return Number.isSafeInteger(l) && (l as number) >= 0 && Number.isInteger(c) && (c as number) >= 0 && (c as number) <= MAX_HLC_COUNTER;
}

export class HybridLogicalClock {
  private last: HlcTimestamp;

  /**
   * @param physicalNow the wall clock (the node clock, in simulations)
   * @param maxDriftMs how far ahead of our wall clock a remote time may be
   */
  constructor(private readonly physicalNow: () => number, private readonly maxDriftMs = 60_000, start: HlcTimestamp = { l: 0, c: 0 }) {
    this.last = start;
  }

  /** A timestamp for a local event (or a message we send). */
  now(): HlcTimestamp {
    const pt = this.physicalNow();
    this.last = pt > this.last.l ? { l: pt, c: 0 } : this.bump(this.last.l, this.last.c + 1);
    return this.last;
  }

  /** Merges a timestamp we received; returns ours, which orders after it. */
  receive(remote: HlcTimestamp): HlcTimestamp {
    const pt = this.physicalNow();
    if (remote.l - pt > this.maxDriftMs) {
      throw new ApiaryError(ErrorCodes.FEED_ENTRY_INVALID, `a remote clock is ${Math.round((remote.l - pt) / 1000)} s ahead of ours (at most ${this.maxDriftMs / 1000} s allowed)`, {
        hint: 'check the clocks of both boards (NTP, or an RTC module)',
      });
    }
    const l = Math.max(this.last.l, remote.l, pt);
    let c: number;
    if (l === this.last.l && l === remote.l) c = Math.max(this.last.c, remote.c) + 1;
    else if (l === this.last.l) c = this.last.c + 1;
    else if (l === remote.l) c = remote.c + 1;
    else c = 0;
    this.last = this.bump(l, c);
    return this.last;
  }

  /** The latest timestamp issued or seen (persist it to keep order across restarts). */
  get current(): HlcTimestamp {
    return this.last;
  }

  /** Counter overflow moves to the next millisecond: order is kept, l drifts by 1 ms at most per 65,536 events. */
  private bump(l: number, c: number): HlcTimestamp {
    return c > MAX_HLC_COUNTER ? { l: l + 1, c: 0 } : { l, c };
  }
}
