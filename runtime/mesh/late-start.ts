/**
 * When a node may start an origin's feed midway (issue 10, finding 12).
 *
 * `starts` in an `entries` message says "the earlier entries of this origin
 * are gone here" (retention): a node that holds none of that feed may then
 * start it at the first entry it can get, and never hold the ones before.
 * A relay saying so cannot be checked (retention is local), so one relay's
 * word is not enough while another linked peer that advertises the origin
 * has not answered: the late entries are set aside (counted
 * `feeds.late_start_deferred`) and those peers are asked first. The feed
 * starts late only at the lowest start any of them claims, or from the
 * beginning if one of them sends it. A node whose only peers holding the
 * origin all claim a late start takes the lowest; it cannot get what no
 * reachable peer holds.
 *
 * Memory: one claim per (origin, peer), only for origins this node holds
 * nothing of; dropped once the feed starts, and a peer's when its link goes.
 */
import type { FeedEntry } from './feed-entry.js';

export class LateStarts {
  /**
   * Splits a received batch: `starts` this node may act on now, the entries
   * to apply, and the origins set aside (their late entries dropped for now).
   * `held(origin)`: this node holds some of that feed; `holders(origin, seq)`:
   * the other linked peers advertising it up to `seq`.
   */
  admit(from: string, starts: Readonly<Record<string, number>>, entries: readonly FeedEntry[], held: (origin: string) => boolean,
    holders: (origin: string, seq: number) => string[]): { entries: FeedEntry[]; starts: Record<string, number>; deferred: string[] } {
    const allowed: Record<string, number> = {};
    const deferred = new Set<string>();
    for (const [origin, seq] of Object.entries(starts)) {
      if (held(origin)) continue; // a feed held continues where it is: starts changes nothing
      if (this.claim(origin, from, seq, holders(origin, seq))) allowed[origin] = seq;
      else deferred.add(origin);
    }
    return { entries: entries.filter((e) => !deferred.has(e.origin)), starts: allowed, deferred: [...deferred] };
  }

  /** origin -> peer -> the first seq that peer says it holds. */
  private readonly claims = new Map<string, Map<string, number>>();

  /**
   * `peer` says `origin` starts at `seq` there; `holders` are the other
   * linked peers that advertise the origin up to at least `seq`. True if the
   * feed may start at `seq` now.
   */
  claim(origin: string, peer: string, seq: number, holders: readonly string[]): boolean {
    let byPeer = this.claims.get(origin);
    if (!byPeer) this.claims.set(origin, (byPeer = new Map<string, number>()));
    byPeer.set(peer, seq);
    const claimed = byPeer;
    if (holders.some((h) => !claimed.has(h))) return false;
    return holders.every((h) => (claimed.get(h) as number) >= seq);
  }

  /** True if `peer` should not be asked for `origin` now: it claimed a late start, and another holder has not answered yet. */
  askOthersFirst(origin: string, peer: string, holders: readonly string[]): boolean {
    const byPeer = this.claims.get(origin);
    return byPeer !== undefined && byPeer.has(peer) && holders.some((h) => h !== peer && !byPeer.has(h));
  }

  /**
   * `peer` was asked for `origin` and did not answer in time: while a late
   * start is pending, it counts as holding nothing earlier, so a silent peer
   * cannot hold the start back forever.
   */
  noAnswer(origin: string, peer: string): void {
    const byPeer = this.claims.get(origin);
    if (byPeer && !byPeer.has(peer)) byPeer.set(peer, Number.POSITIVE_INFINITY);
  }

  /** The feed of `origin` has started: the claims are no longer needed. */
  started(origin: string): void {
    this.claims.delete(origin);
  }

  /** A peer's link went down: its claims no longer stand. */
  forgetPeer(peer: string): void {
    for (const [origin, byPeer] of this.claims) {
      byPeer.delete(peer);
      if (byPeer.size === 0) this.claims.delete(origin);
    }
  }
}
