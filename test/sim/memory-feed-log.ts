/**
 * The feeds of one simulated node, in memory, with the feed store's rules
 * (feed-store.ts): entries of an origin apply in seq order, each after the
 * one its `prev` names; one already held is a duplicate, another at its seq a
 * fork; past the head, a gap; a feed met midway starts late only when told.
 * Entry objects are shared between the simulated nodes (one copy per entry
 * in the process, as one copy per entry is on each board's card).
 */
import { entryHash, type FeedEntry } from '../../runtime/mesh/feed-entry.js';
import type { ApplyResult, FeedHead } from '../../runtime/mesh/feed-store.js';
import type { FeedLog } from '../../runtime/mesh/feed-sync.js';

interface Feed { first: number; entries: FeedEntry[]; hashes: string[]; head: FeedHead }

/** Entries by hash, shared by every node of one simulation. */
export class EntryPool {
  private readonly byHash = new Map<string, { entry: FeedEntry; hash: string }>();
  intern(entry: FeedEntry): { entry: FeedEntry; hash: string } {
    const hash = entryHash(entry);
    let held = this.byHash.get(hash);
    if (!held) {
      held = { entry, hash };
      this.byHash.set(hash, held);
    }
    return held;
  }
}

export class MemoryFeedLog implements FeedLog {
  private readonly feeds = new Map<string, Feed>();
  duplicates = 0;
  /** Entries stored here in all. */
  stored = 0;

  constructor(private readonly pool: EntryPool) {}

  have(): Record<string, number> {
    return Object.fromEntries([...this.feeds].map(([origin, feed]) => [origin, feed.head.seq]));
  }

  head(origin: string): FeedHead {
    return this.feeds.get(origin)?.head ?? { seq: 0, hash: null };
  }

  recentHash(origin: string, seq: number): string | undefined {
    const feed = this.feeds.get(origin);
    return feed?.hashes[seq - feed.first];
  }

  countDuplicate(): void {
    this.duplicates++;
  }

  apply(received: FeedEntry, startsFeed = false): Promise<ApplyResult> {
    const { entry, hash } = this.pool.intern(received);
    let feed = this.feeds.get(entry.origin);
    if (feed && entry.seq <= feed.head.seq) {
      const held = feed.hashes[entry.seq - feed.first];
      if (held === undefined || held === hash) {
        this.duplicates++;
        return Promise.resolve('duplicate');
      }
      return Promise.resolve('fork');
    }
    if (!feed) {
      if (entry.seq > 1 && !startsFeed) return Promise.resolve('gap');
      feed = { first: entry.seq, entries: [], hashes: [], head: { seq: entry.seq - 1, hash: null } };
      this.feeds.set(entry.origin, feed);
    } else if (entry.seq > feed.head.seq + 1) {
      return Promise.resolve('gap');
    } else if (entry.prev !== feed.head.hash) {
      return Promise.resolve('fork');
    }
    feed.entries.push(entry);
    feed.hashes.push(hash);
    feed.head = { seq: entry.seq, hash };
    this.stored++;
    return Promise.resolve('applied');
  }

  async *read(origin: string, fromSeq = 1, limit = Number.POSITIVE_INFINITY): AsyncGenerator<FeedEntry> {
    const feed = this.feeds.get(origin);
    if (!feed) return;
    let left = limit;
    for (let i = Math.max(0, fromSeq - feed.first); i < feed.entries.length && left > 0; i++, left--) yield feed.entries[i] as FeedEntry;
  }
}
