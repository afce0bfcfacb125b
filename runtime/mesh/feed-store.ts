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
 *
 * With keep rules (sparse-replication.ts), an origin no rule keeps whole is
 * held sparsely (sparse-feed.ts): every entry is still checked and chained
 * here, but only the kept ones are written, to a log of their own under
 * `sparseDir`; the others go to the relay cache (relay-cache.ts).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { FRAME_HEADER_BYTES } from '../storage/record-frame.js';
import { SegmentLog } from '../storage/segment-log.js';
import { encodeEntry, entryHash, parseEntry, type FeedEntry } from './feed-entry.js';
import type { FeedLog } from './feed-sync.js';
import type { RelayCache } from './relay-cache.js';
import { admitsOrigin, chooseEviction, type FeedBudgetSettings } from './replication-budget.js';
import { dropExpired, lastKept, readKept, SparseHeads, unbrokenRun } from './sparse-feed.js';

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
  /** Keep rules (sparse-replication.ts): without them every entry is kept. */
  replication?: { keeps(entry: FeedEntry, now: number): boolean; holdsWhole(origin: string): boolean };
  /** Where sparse feeds are stored, and where their entries not kept are held for relaying. */
  sparse?: { dir: string; relay: RelayCache };
}

export interface FeedStats {
  readonly origin: string;
  readonly seq: number;
  /** Oldest seq still held (retention drops from the front). */
  readonly firstSeq: number;
  readonly bytes: number;
  readonly droppedByRetention: number;
  /** Held sparsely: `bytes` and `kept` are the kept entries only; firstSeq is the oldest kept one. */
  readonly sparse?: true;
  readonly kept?: number;
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
  /** Held sparsely: the log holds the kept entries only (positions are not seqs). */
  sparse: boolean;
  /** seq of the oldest kept entry of a sparse feed, for status (undefined: none, or not looked up yet). */
  firstKept?: number;
}

const ORIGIN_DIR = /^[a-z2-7]{12}$/;
/** Live gossip re-delivers mostly the newest entries: this many hashes per origin catch nearly every repeat. */
const RECENT_HASHES = 512;

export class FeedStore {
  private readonly feeds = new Map<string, Feed>();
  private readonly opening = new Map<string, Promise<Feed>>();
  private readonly heads: SparseHeads | undefined;

  constructor(private readonly options: FeedStoreOptions) {
    const { sparse } = options;
    this.heads = sparse && new SparseHeads({ dir: sparse.dir, counters: options.counters, flushLogs: () => this.flushSparse() });
  }

  async open(): Promise<void> {
    const origins = async (dir: string) => (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && ORIGIN_DIR.test(e.name)).map((e) => e.name);
    const sparse = this.options.sparse ? await origins(this.options.sparse.dir) : [];
    await this.heads?.load();
    await Promise.all([...new Set([...await origins(this.options.dir), ...sparse, ...this.heads?.origins() ?? []])].map((origin) => this.feed(origin)));
  }

  /** Whether `origin` is held sparsely: its kept entries have holes between them (sparse-replication.ts). */
  holdsSparsely(origin: string): boolean {
    return this.feeds.get(origin)?.sparse ?? false;
  }

  /** Origins held sparsely (told to peers in a `sparse` message, so they ask a full holder first). */
  sparseOrigins(): string[] {
    return [...this.feeds.values()].filter((f) => f.sparse && f.head.seq > 0).map((f) => f.origin).sort();
  }

  /**
   * The store as peers are served from it (feed-gossip.ts): a sparse feed's
   * entries from its kept log and the relay cache together, and only as one
   * unbroken run, so a peer is never sent entries with holes in between.
   */
  forPeers(): FeedLog {
    return {
      have: () => this.have(),
      head: (origin) => this.head(origin),
      recentHash: (origin, seq) => this.recentHash(origin, seq),
      countDuplicate: () => this.countDuplicate(),
      apply: (entry, startsFeed) => this.apply(entry, startsFeed),
      read: (origin, fromSeq, limit) => this.readForPeers(origin, fromSeq, limit),
    };
  }

  /** Latest seq held per origin: what a peer needs to know to send only what we lack. */
  have(): Record<string, number> {
    return Object.fromEntries([...this.feeds].filter(([, feed]) => feed.head.seq > 0).map(([origin, feed]) => [origin, feed.head.seq]));
  }

  stats(): FeedStats[] {
    return [...this.feeds.values()].filter((f) => f.log || (f.sparse && f.head.seq > 0)).map((feed) => {
      if (feed.sparse) {
        const s = feed.log?.stats();
        const kept = s ? s.nextSeq - s.firstSeq : 0;
        return { origin: feed.origin, seq: feed.head.seq, firstSeq: feed.firstKept ?? feed.head.seq + 1, bytes: s?.bytes ?? 0, droppedByRetention: s?.droppedByRetention ?? 0, sparse: true, kept };
      }
      const s = (feed.log as SegmentLog).stats();
      return { origin: feed.origin, seq: feed.head.seq, firstSeq: s.firstSeq + 1, bytes: s.bytes, droppedByRetention: s.droppedByRetention };
    });
  }

  /** Applies the age bound to feeds nobody writes to any more, and drops sparse feeds' entries no rule keeps any more (counted). */
  async prune(): Promise<void> {
    const { replication, counters } = this.options;
    for (const feed of this.feeds.values()) {
      await feed.log?.prune();
      if (!feed.sparse || !feed.log || !replication) continue;
      const dropped = await dropExpired(feed.log, (entry) => replication.keeps(entry, Date.now()));
      if (dropped > 0) {
        counters.increment('feeds.sparse.expired', dropped);
        feed.firstKept = undefined;
        await this.noteFirstKept(feed);
      }
    }
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
   * holds, so a node that has none of that feed may start it here; one that
   * holds it continues it here, past entries no peer it can reach still
   * holds (feed-gossip.ts decides, counted as feeds.resumed_skipped).
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
    const feed = this.feeds.get(origin);
    const log = feed?.log;
    if (!log) return;
    if (feed.sparse) {
      // What the rules keep now: an entry past its maxAge may still be on disk until its segment goes.
      const now = Date.now();
      let left = limit;
      for await (const entry of readKept(log, fromSeq)) {
        if (counted) this.options.counters.increment('feeds.disk_entries_read');
        if (this.options.replication?.keeps(entry, now) === false) continue;
        if (left-- <= 0) return;
        yield entry;
      }
      return;
    }
    // Verified on the way in (or signed here), and CRC-checked on disk: parsed, not verified again.
    for await (const record of log.read(Math.max(0, fromSeq - 1), limit)) {
      if (counted) this.options.counters.increment('feeds.disk_entries_read');
      yield parseEntry(record.payload);
    }
  }

  /** A sparse feed's entries with seq >= fromSeq, kept or held for relaying, up to the first one held by neither. */
  private async *readForPeers(origin: string, fromSeq = 1, limit = Number.POSITIVE_INFINITY): AsyncGenerator<FeedEntry> {
    const feed = this.feeds.get(origin);
    if (!feed?.sparse) {
      yield* this.read(origin, fromSeq, limit);
      return;
    }
    yield* unbrokenRun(feed.log ? readKept(feed.log, fromSeq) : undefined, this.options.sparse?.relay.from(origin, fromSeq) ?? [], limit);
  }

  async close(): Promise<void> {
    for (const feed of this.feeds.values()) await feed.queue;
    await this.heads?.flush().catch(() => this.options.counters.increment('feeds.sparse.heads_write_errors'));
    for (const feed of this.feeds.values()) {
      await feed.log?.flush();
      await feed.log?.close();
    }
    this.feeds.clear();
    this.opening.clear();
    this.options.sparse?.relay.clear();
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
    if (feed.sparse || (!feed.log && this.options.sparse && this.options.replication?.holdsWhole(feed.origin) === false)) {
      return this.applySparse(feed, entry, startsFeed);
    }
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
      if (!startsFeed) return 'gap';
      await feed.log.skipTo(entry.seq - 1);
      this.options.counters.increment('feeds.resumed_skipped', entry.seq - head.seq - 1);
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

  /**
   * applyInOrder for a feed held sparsely: the same checks (next seq, chained
   * to the head), then the entry is written if kept, else held for relaying;
   * either way the head moves on (and is written to the heads file soon).
   */
  private async applySparse(feed: Feed, entry: FeedEntry, startsFeed: boolean): Promise<ApplyResult> {
    const { head } = feed;
    const { counters, replication, sparse } = this.options;
    if (!sparse) throw new Error('a sparse feed without sparse storage');
    if (head.seq === 0 && entry.seq > 1 && !startsFeed) return 'gap';
    if (head.seq > 0 && entry.seq > head.seq + 1 && !startsFeed) return 'gap';
    if (head.seq > 0 && entry.seq === head.seq + 1 && entry.prev !== head.hash) {
      const held = await this.heldEntry(feed, head.seq);
      if (held) this.options.onFork?.(held, entry);
      return 'fork';
    }
    if (!feed.admitted && !this.admitOrigin(feed)) return 'refused';
    const bytes = encodeEntry(entry);
    if (head.seq === 0 && entry.seq > 1) counters.increment('feeds.joined_late_skipped', entry.seq - 1);
    if (head.seq > 0 && entry.seq > head.seq + 1) counters.increment('feeds.resumed_skipped', entry.seq - head.seq - 1);
    feed.sparse = true;
    if (replication?.keeps(entry, Date.now()) !== false) {
      await this.makeRoom(bytes.length + FRAME_HEADER_BYTES);
      if (!feed.log) {
        const log = this.newLog(entry.origin, 0, sparse.dir);
        await log.open();
        feed.log = log;
      }
      await feed.log.append(bytes);
      feed.firstKept ??= entry.seq;
      counters.increment('feeds.sparse.kept');
    } else {
      sparse.relay.add(entry, bytes.length);
      counters.increment('feeds.sparse.relayed');
    }
    feed.head = { seq: entry.seq, hash: entryHash(entry) };
    feed.recent.set(entry.seq, feed.head.hash as string);
    if (feed.recent.size > RECENT_HASHES) feed.recent.delete(entry.seq - RECENT_HASHES);
    this.heads?.set(feed.origin, feed.head);
    return 'applied';
  }

  /** Entry `seq` of a sparse feed, if it is still held (relay cache or kept log). */
  private async heldEntry(feed: Feed, seq: number): Promise<FeedEntry | undefined> {
    const relayed = this.options.sparse?.relay.get(feed.origin, seq);
    if (relayed || !feed.log) return relayed;
    for await (const entry of readKept(feed.log, seq, 1)) return entry.seq === seq ? entry : undefined;
    return undefined;
  }

  private async flushSparse(): Promise<void> {
    for (const feed of this.feeds.values()) if (feed.sparse) await feed.log?.flush();
  }

  private async noteFirstKept(feed: Feed): Promise<void> {
    if (!feed.log) return;
    for await (const entry of readKept(feed.log, 1, 1)) feed.firstKept = entry.seq;
  }

  /** A re-sent entry is a duplicate only if it is the very entry we hold. */
  private async sameAsStored(feed: Feed, entry: FeedEntry): Promise<boolean> {
    if (feed.sparse) {
      const held = await this.heldEntry(feed, entry.seq);
      if (!held || entryHash(held) === entryHash(entry)) return true; // not held any more: we cannot tell, and must not re-apply
      this.options.onFork?.(held, entry);
      return false;
    }
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

  private newLog(origin: string, initialSeq: number, dir = this.options.dir): SegmentLog {
    return new SegmentLog({
      dir: path.join(dir, origin),
      name: `feed.${origin}`,
      segmentBytes: this.options.segmentBytes,
      maxBytes: this.options.maxBytesPerOrigin,
      maxAgeMs: this.options.maxAgeMs,
      initialSeq,
      counters: this.options.counters,
    });
  }

  private async openFeed(origin: string): Promise<Feed> {
    const sparseDir = this.options.sparse?.dir;
    // A feed held whole stays whole (its log is where it is); one held sparsely stays sparse.
    if (sparseDir && !await isDir(path.join(this.options.dir, origin)) && (this.heads?.get(origin) || await isDir(path.join(sparseDir, origin)))) {
      return this.openSparseFeed(origin, sparseDir);
    }
    const exists = await isDir(path.join(this.options.dir, origin));
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
    const feed: Feed = { origin, log, head, recent: new Map(head.hash === null ? [] : [[head.seq, head.hash]]), queue: Promise.resolve(), admitted: log !== undefined, sparse: false };
    this.feeds.set(origin, feed);
    return feed;
  }

  /** A sparse feed: its kept log, and its head, the later of the heads file's and the last kept entry's. */
  private async openSparseFeed(origin: string, sparseDir: string): Promise<Feed> {
    let log: SegmentLog | undefined;
    let head: FeedHead = this.heads?.get(origin) ?? { seq: 0, hash: null };
    if (await isDir(path.join(sparseDir, origin))) {
      log = this.newLog(origin, 0, sparseDir);
      await log.open();
      const last = await lastKept(log);
      if (last && last.seq > head.seq) head = { seq: last.seq, hash: entryHash(last) };
    }
    const feed: Feed = { origin, log, head, recent: new Map(head.hash === null ? [] : [[head.seq, head.hash]]), queue: Promise.resolve(), admitted: head.seq > 0, sparse: true };
    await this.noteFirstKept(feed);
    this.feeds.set(origin, feed);
    return feed;
  }
}

function isDir(dir: string): Promise<boolean> {
  return stat(dir).then((s) => s.isDirectory(), () => false);
}
