/**
 * Origins a peer names in its `hello`/`have`, kept within the member
 * directory (issue 10, finding 3). A peer can name any number of origins it
 * makes up; kept as they came, each would cost memory here (have-vectors,
 * wants, status) for as long as the link lasts. So only origins whose
 * certificate this node holds enter a peer's have-vector. An origin we have
 * no certificate for cannot be told from a made-up one until its entries (and
 * certificate) arrive, so a bounded few of them per peer are kept as
 * candidates and asked for ("probed") at most once per probe interval each;
 * the rest are refused and counted, and come again with the next `have`.
 */
import type { Counters } from '../counters.js';
import type { HaveVector } from './mesh-protocol.js';

/** Unknown origins kept per peer until its next have (a few batches' worth of certificates). */
export const MAX_UNKNOWN_ORIGINS_PER_PEER = 1024;
/** Unknown origins asked for in one want. */
export const PROBES_PER_WANT = 64;

/** Splits a stated have-vector into origins we know (certificate held) and a bounded list of unknown ones. */
export function splitHave(have: HaveVector, known: (origin: string) => boolean, counters: Counters): { known: HaveVector; unknown: HaveVector } {
  const kept: HaveVector = {};
  const unknown: HaveVector = {};
  let unknownCount = 0;
  let refused = 0;
  for (const [origin, seq] of Object.entries(have)) {
    if (known(origin)) kept[origin] = seq;
    else if (seq > 0 && unknownCount < MAX_UNKNOWN_ORIGINS_PER_PEER) {
      unknown[origin] = seq;
      unknownCount += 1;
    } else refused += 1;
  }
  if (refused > 0) counters.increment('mesh.rejected.have_unknown_origin', refused);
  return { known: kept, unknown };
}

/**
 * When each unknown origin was last asked for, over all peers: one that no
 * peer can serve (made up, or of an owner we do not trust) is asked again
 * only after `intervalMs`, never in a loop. Bounded: when full of recent
 * probes, further ones wait (counted).
 */
export class OriginProbes {
  private readonly probed = new Map<string, number>();

  constructor(private readonly options: { capacity: number; intervalMs: number; counters: Counters; now?: () => number }) {}

  /** Up to `max` of `candidates` not asked for recently, now marked as asked. */
  pick(candidates: readonly string[], max = PROBES_PER_WANT): string[] {
    const now = (this.options.now ?? Date.now)();
    const picked: string[] = [];
    for (const origin of candidates) {
      if (picked.length >= max) break;
      const at = this.probed.get(origin);
      if (at !== undefined && now - at < this.options.intervalMs) continue;
      if (at === undefined && this.probed.size >= this.options.capacity && !this.evictExpired(now)) {
        this.options.counters.increment('mesh.probes_deferred');
        break;
      }
      this.probed.set(origin, now);
      picked.push(origin);
    }
    if (picked.length > 0) this.options.counters.increment('mesh.probes_sent', picked.length);
    return picked;
  }

  /**
   * An answer came, and `origins` were not in it because the batch was full
   * (the peer fills batches in origin order, so those after its last origin):
   * they may be asked again at once.
   */
  release(origins: readonly string[]): void {
    for (const origin of origins) this.probed.delete(origin);
  }

  /** Drops probes older than the interval; true if any room was made. */
  private evictExpired(now: number): boolean {
    const before = this.probed.size;
    for (const [origin, at] of this.probed) if (now - at >= this.options.intervalMs) this.probed.delete(origin);
    return this.probed.size < before;
  }
}
