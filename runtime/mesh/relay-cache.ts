/**
 * Entries a sparse node passes on without keeping them (sparse-replication.ts):
 * held in memory, first in first out, up to `maxBytes` (their size on the
 * wire), so they still go along the broadcast tree and answer peers' wants
 * for recent entries. What is dropped to stay within the bound is counted
 * (mesh.relay.dropped); a peer that asks for it later gets an honest answer
 * (feed-store.ts, readForPeers).
 */
import type { Counters } from '../counters.js';
import type { FeedEntry } from './feed-entry.js';

interface Held {
  readonly entry: FeedEntry;
  readonly bytes: number;
}

export interface RelayStatus {
  readonly bytes: number;
  readonly maxBytes: number;
  readonly entries: number;
  readonly dropped: number;
}

export class RelayCache {
  /** origin -> seq -> entry, each origin's map in seq order (entries are applied in order). */
  private readonly byOrigin = new Map<string, Map<number, Held>>();
  /** Arrival order, for dropping the oldest first; `next` is the oldest still listed. */
  private order: { origin: string; seq: number }[] = [];
  private next = 0;
  private bytes = 0;
  private dropped = 0;

  constructor(private readonly options: { maxBytes: number; counters: Counters }) {}

  /** Holds `entry` (`bytes`: its size on the wire), dropping the oldest held until it fits. */
  add(entry: FeedEntry, bytes: number): void {
    if (bytes > this.options.maxBytes) {
      this.count(1);
      return;
    }
    while (this.bytes + bytes > this.options.maxBytes && this.next < this.order.length) this.dropOldest();
    let feed = this.byOrigin.get(entry.origin);
    if (!feed) this.byOrigin.set(entry.origin, (feed = new Map<number, Held>()));
    feed.set(entry.seq, { entry, bytes });
    this.order.push({ origin: entry.origin, seq: entry.seq });
    this.bytes += bytes;
  }

  get(origin: string, seq: number): FeedEntry | undefined {
    return this.byOrigin.get(origin)?.get(seq)?.entry;
  }

  /** Held entries of `origin` with seq >= fromSeq, oldest first. */
  from(origin: string, fromSeq: number): FeedEntry[] {
    const out: FeedEntry[] = [];
    for (const [seq, held] of this.byOrigin.get(origin) ?? []) if (seq >= fromSeq) out.push(held.entry);
    return out;
  }

  status(): RelayStatus {
    return { bytes: this.bytes, maxBytes: this.options.maxBytes, entries: this.order.length - this.next, dropped: this.dropped };
  }

  clear(): void {
    this.byOrigin.clear();
    this.order = [];
    this.next = 0;
    this.bytes = 0;
  }

  private dropOldest(): void {
    const oldest = this.order[this.next];
    if (!oldest) return;
    this.next++;
    const feed = this.byOrigin.get(oldest.origin);
    const held = feed?.get(oldest.seq);
    if (feed && held) {
      feed.delete(oldest.seq);
      if (feed.size === 0) this.byOrigin.delete(oldest.origin);
      this.bytes -= held.bytes;
      this.count(1);
    }
    // The listed prefix is cut now and then, not per drop (an array shift is O(n)).
    if (this.next > 1024 && this.next * 2 > this.order.length) {
      this.order = this.order.slice(this.next);
      this.next = 0;
    }
  }

  private count(n: number): void {
    this.dropped += n;
    this.options.counters.increment('mesh.relay.dropped', n);
  }
}
