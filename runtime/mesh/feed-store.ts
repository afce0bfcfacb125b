/**
 * The feeds a node keeps: one append-only segment log per origin, holding
 * that origin's entries in seq order with no gaps. An entry is applied only
 * if it is the next one of its feed and chains to the one before (prev hash),
 * so each (origin, seq) is applied exactly once, and a second, different
 * entry for a seq already held (an origin signing two histories) is caught.
 *
 * Nothing waits in memory: an entry that arrives early (a gap) is refused,
 * and the node asks for what it lacks by catch-up, from what is on disk.
 * Invariant: log position = seq - 1, so a feed's head survives restarts.
 * A feed first met midway (its start already dropped by every peer's
 * retention) starts at that entry: its log begins at that position, and the
 * entries it never saw are counted as `feeds.joined_late_skipped`.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { FRAME_HEADER_BYTES } from '../storage/record-frame.js';
import { SegmentLog } from '../storage/segment-log.js';
import { encodeEntry, entryHash, parseEntry, type FeedEntry } from './feed-entry.js';
import { admitsOrigin, chooseEviction, type FeedBudgetSettings } from './replication-budget.js';

/** refused: over a replication budget (replication-budget.ts), counted as feeds.refused.<budget>. */
export type ApplyResult = 'applied' | 'duplicate' | 'gap' | 'fork' | 'refused';

export interface FeedHead {
  readonly seq: number;
  readonly hash: string | null;
}

export interface FeedStoreOptions {
  dir: string;
  counters: Counters;
  segmentBytes: number;
  /** Retention per origin: the oldest segments go first, counted. */
  maxBytesPerOrigin: number;
  maxAgeMs?: number;
  /** An origin signed two histories: the entry held and the received one that conflicts with it (a proof). */
  onFork?: (held: FeedEntry, received: FeedEntry) => void;
  /** This node's own origin: never refused or evicted by `budget`. */
  self?: string;
  /** The owner key of an origin (from its certificate), for the per-owner budgets. */
  ownerOf?: (origin: string) => string | undefined;
  budget?: FeedBudgetSettings;
}

export interface FeedStats {
  readonly origin: string;
  readonly seq: number;
  /** Oldest seq still held (retention drops from the front). */
  readonly firstSeq: number;
  readonly bytes: number;
  readonly droppedByRetention: number;
}

interface Feed {
  readonly origin: string;
  /** Undefined until the first entry of a newly met origin arrives. */
  log: SegmentLog | undefined;
  head: FeedHead;
  /** Hashes of the latest entries (seq -> hash), so a re-sent one is known without reading the disk. */
  recent: Map<number, string>;
  /** Serialises applies to one feed: the head check and the append are one step. */
  queue: Promise<unknown>;
  /** Counted against its owner's originsPerOwner from admission on, before its log is open. */
  admitted: boolean;
}

const ORIGIN_DIR = /^[a-z2-7]{12}$/;
/** Live gossip re-delivers mostly the newest entries: this many hashes per origin catch nearly every repeat. */
const RECENT_HASHES = 512;

export class FeedStore {
  private readonly feeds = new Map<string, Feed>();
  private readonly opening = new Map<string, Promise<Feed>>();

  constructor(private readonly options: FeedStoreOptions) {}

  async open(): Promise<void> {
    const entries = await readdir(this.options.dir, { withFileTypes: true }).catch(() => []);
    await Promise.all(entries.filter((e) => e.isDirectory() && ORIGIN_DIR.test(e.name)).map((e) => this.feed(e.name)));
  }

  /** Latest seq held per origin: what a peer needs to know to send only what we lack. */
  have(): Record<string, number> {
    return Object.fromEntries([...this.feeds].filter(([, feed]) => feed.head.seq > 0).map(([origin, feed]) => [origin, feed.head.seq]));
  }

  stats(): FeedStats[] {
    return [...this.feeds.values()].filter((f) => f.log).map((feed) => {
      const s = (feed.log as SegmentLog).stats();
      return { origin: feed.origin, seq: feed.head.seq, firstSeq: s.firstSeq + 1, bytes: s.bytes, droppedByRetention: s.droppedByRetention };
    });
  }

  /** Applies the age bound to feeds nobody writes to any more. */
  async prune(): Promise<void> {
    for (const feed of this.feeds.values()) await feed.log?.prune();
  }

  head(origin: string): FeedHead {
    return this.feeds.get(origin)?.head ?? { seq: 0, hash: null };
  }

  /**
   * The hash of entry `seq` of `origin` if it is one of the latest held
   * (RECENT_HASHES per origin). A received entry with this hash is one
   * already verified and stored: it needs no signature check.
   */
  recentHash(origin: string, seq: number): string | undefined {
    return this.feeds.get(origin)?.recent.get(seq);
  }

  /** Counts an entry known to be held (recentHash matched) as a duplicate, as apply() would. */
  countDuplicate(): void {
    this.options.counters.increment('feeds.duplicate');
  }

  /**
   * Checks and stores one entry (already decoded and signature-verified).
   * `startsFeed`: a peer said this is the oldest entry of its origin it still
   * holds, so a node that has none of that feed may start it here.
   */
  async apply(entry: FeedEntry, startsFeed = false): Promise<ApplyResult> {
    const feed = await this.feed(entry.origin);
    const result = feed.queue.then(() => this.applyInOrder(feed, entry, startsFeed));
    feed.queue = result.catch(() => undefined);
    const outcome = await result;
    this.options.counters.increment(`feeds.${outcome}`);
    return outcome;
  }

  /**
   * Entries of `origin` with seq >= fromSeq, oldest first (what retention kept).
   * `counted` false: a read of the node's own streams (feed-index.ts), not of gossip, is not feeds.disk_entries_read.
   */
  async *read(origin: string, fromSeq = 1, limit = Number.POSITIVE_INFINITY, counted = true): AsyncGenerator<FeedEntry> {
    const log = this.feeds.get(origin)?.log;
    if (!log) return;
    // Verified on the way in (or signed here), and CRC-checked on disk: parsed, not verified again.
    for await (const record of log.read(Math.max(0, fromSeq - 1), limit)) {
      if (counted) this.options.counters.increment('feeds.disk_entries_read');
      yield parseEntry(record.payload);
    }
  }

  async close(): Promise<void> {
    for (const feed of this.feeds.values()) {
      await feed.queue;
      await feed.log?.flush();
      await feed.log?.close();
    }
    this.feeds.clear();
    this.opening.clear();
  }

  /** Forces appended entries to disk: of one origin, or of all. */
  async flush(origin?: string): Promise<void> {
    if (origin !== undefined) {
      await this.feeds.get(origin)?.log?.flush();
      return;
    }
    for (const feed of this.feeds.values()) await feed.log?.flush();
  }

  private async applyInOrder(feed: Feed, entry: FeedEntry, startsFeed: boolean): Promise<ApplyResult> {
    const { head } = feed;
    if (entry.seq <= head.seq) return (await this.sameAsStored(feed, entry)) ? 'duplicate' : 'fork';
    if (!feed.log && entry.seq > 1 && !startsFeed) return 'gap';
    if (!feed.log && !feed.admitted && !this.admitOrigin(feed)) return 'refused';
    const bytes = encodeEntry(entry);
    if (feed.origin !== this.options.self) await this.makeRoom(bytes.length + FRAME_HEADER_BYTES);
    if (!feed.log) {
      // A newly met origin: its feed starts here, even midway (earlier entries are gone everywhere we could ask).
      // Assigned only once open: a flush() meanwhile must not meet a log that is not open yet.
      const log = this.newLog(entry.origin, entry.seq - 1);
      await log.open();
      feed.log = log;
      if (entry.seq > 1) this.options.counters.increment('feeds.joined_late_skipped', entry.seq - 1);
    } else if (entry.seq > head.seq + 1) {
      return 'gap';
    } else if (entry.prev !== head.hash) {
      for await (const record of feed.log.read(head.seq - 1, 1)) this.options.onFork?.(parseEntry(record.payload), entry);
      return 'fork';
    }
    const logSeq = await feed.log.append(bytes);
    if (logSeq !== entry.seq - 1) throw new Error(`feed ${entry.origin}: log position ${logSeq} for seq ${entry.seq}`);
    feed.head = { seq: entry.seq, hash: entryHash(entry) };
    feed.recent.set(entry.seq, feed.head.hash as string);
    if (feed.recent.size > RECENT_HASHES) feed.recent.delete(entry.seq - RECENT_HASHES);
    return 'applied';
  }

  /** A re-sent entry is a duplicate only if it is the very entry we hold. */
  private async sameAsStored(feed: Feed, entry: FeedEntry): Promise<boolean> {
    if (!feed.log) return true;
    for await (const record of feed.log.read(entry.seq - 1, 1)) {
      const held = parseEntry(record.payload);
      if (entryHash(held) === entryHash(entry)) return true;
      this.options.onFork?.(held, entry);
      return false;
    }
    return true; // dropped by retention: we cannot tell, and must not re-apply
  }

  /** originsPerOwner: a feed not held yet is admitted (and counted at once) only if its owner has room. */
  private admitOrigin(feed: Feed): boolean {
    const { budget, ownerOf, self } = this.options;
    if (budget && ownerOf && feed.origin !== self) {
      const owner = ownerOf(feed.origin);
      let held = 0;
      for (const other of this.feeds.values()) if (other.admitted && other.origin !== self && ownerOf(other.origin) === owner) held++;
      if (owner !== undefined && !admitsOrigin(held, budget)) {
        this.options.counters.increment('feeds.refused.origins_per_owner');
        return false;
      }
    }
    feed.admitted = true;
    return true;
  }

  /**
   * maxFeedBytes: drops the oldest segments other origins hold (fairly,
   * replication-budget.ts) until `bytes` more fit. Only sealed segments can
   * go; when none is left the entry is still taken, into its feed's active
   * segment (at most segmentBytes per origin) or by sealing it, which makes
   * it droppable next time: refusing would stop every feed for good.
   */
  private async makeRoom(bytes: number): Promise<void> {
    const { budget, self, ownerOf } = this.options;
    if (!budget) return;
    for (;;) {
      // Runs for every entry received: a plain sum; the victim list is built only when over budget.
      let used = 0;
      for (const f of this.feeds.values()) if (f.log && f.origin !== self) used += f.log.bytes;
      if (used + bytes <= budget.maxFeedBytes) return;
      const others = [...this.feeds.values()].filter((f) => f.log && f.origin !== self);
      const victim = chooseEviction(others.map((f) => {
        const log = f.log as SegmentLog;
        return { origin: f.origin, owner: ownerOf?.(f.origin), bytes: log.bytes, droppable: log.sealedBytes() };
      }));
      const dropped = victim === undefined ? 0 : await this.feeds.get(victim)?.log?.dropOldestSegment() ?? 0;
      if (dropped === 0) return;
      this.options.counters.increment('feeds.evicted_for_budget', dropped);
    }
  }

  private feed(origin: string): Promise<Feed> {
    const open = this.feeds.get(origin);
    if (open) return Promise.resolve(open);
    let opening = this.opening.get(origin);
    if (!opening) {
      opening = this.openFeed(origin);
      this.opening.set(origin, opening);
    }
    return opening;
  }

  private newLog(origin: string, initialSeq: number): SegmentLog {
    return new SegmentLog({
      dir: path.join(this.options.dir, origin),
      name: `feed.${origin}`,
      segmentBytes: this.options.segmentBytes,
      maxBytes: this.options.maxBytesPerOrigin,
      maxAgeMs: this.options.maxAgeMs,
      initialSeq,
      counters: this.options.counters,
    });
  }

  private async openFeed(origin: string): Promise<Feed> {
    const exists = await stat(path.join(this.options.dir, origin)).then(() => true, () => false);
    let log: SegmentLog | undefined;
    let head: FeedHead = { seq: 0, hash: null };
    if (exists) {
      log = this.newLog(origin, 0);
      await log.open();
      const stats = log.stats();
      if (stats.nextSeq > stats.firstSeq) {
        for await (const record of log.read(stats.nextSeq - 1, 1)) {
          const last = parseEntry(record.payload);
          head = { seq: last.seq, hash: entryHash(last) };
        }
      } else {
        // Created, then cut off before its first entry: as if never met.
        await log.close();
        await rm(path.join(this.options.dir, origin), { recursive: true, force: true });
        log = undefined;
      }
    }
    const feed: Feed = { origin, log, head, recent: new Map(head.hash === null ? [] : [[head.seq, head.hash]]), queue: Promise.resolve(), admitted: log !== undefined };
    this.feeds.set(origin, feed);
    return feed;
  }
}
