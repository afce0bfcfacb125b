/**
 * How a feed held sparsely (sparse-replication.ts) is stored: its kept
 * entries in a segment log of their own, in seq order but with holes, so a
 * log position is not a seq (as it is for a feed held whole); and the head
 * of every such feed (seq and hash of the last entry applied, kept or not)
 * in one state file, written atomically (write, fsync, rename) at most every
 * 10 s, after the kept logs are flushed. After a power cut the head is
 * the later of the file's and the last kept entry's: if it lags, the node
 * asks its peers again for what came after, which chains to it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { AtomicJsonFile } from '../storage/atomic-json-file.js';
import type { SegmentLog } from '../storage/segment-log.js';
import { parseEntry, type FeedEntry } from './feed-entry.js';
import type { FeedHead } from './feed-store.js';

const HEADS_FORMAT = 1;
const HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const NODE_ID = /^[a-z2-7]{12}$/;
/**
 * Heads are written at most this often: an SD card is not written per entry
 * for them (a head that lags only costs a re-fetch of what came after it).
 */
export const HEAD_WRITE_INTERVAL_MS = 10_000;

interface HeadsDocument {
  v: number;
  heads: Record<string, { seq: number; hash: string }>;
}

/** The heads file of the sparse feeds: read at open, written in the background, and at close. */
export class SparseHeads {
  private readonly file: AtomicJsonFile<HeadsDocument>;
  private readonly heads = new Map<string, FeedHead>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly options: { dir: string; counters: Counters; flushLogs: () => Promise<void> }) {
    this.file = new AtomicJsonFile(path.join(options.dir, 'heads.json'), { space: 0 });
  }

  /** Reads the file; a malformed record is counted and left out (the feed is then asked for again from its kept entries). */
  async load(): Promise<void> {
    const doc = await this.file.read().catch(() => {
      this.options.counters.increment('feeds.sparse.heads_unreadable');
      return null;
    });
    if (!doc || doc.v !== HEADS_FORMAT || typeof doc.heads !== 'object' || doc.heads === null) return;
    for (const [origin, head] of Object.entries(doc.heads)) {
      if (NODE_ID.test(origin) && Number.isSafeInteger(head?.seq) && head.seq > 0 && typeof head.hash === 'string' && HASH_PATTERN.test(head.hash)) {
        this.heads.set(origin, { seq: head.seq, hash: head.hash });
      } else {
        this.options.counters.increment('feeds.sparse.heads_invalid');
      }
    }
  }

  get(origin: string): FeedHead | undefined {
    return this.heads.get(origin);
  }

  origins(): string[] {
    return [...this.heads.keys()];
  }

  /** A new head of a sparse feed: written within HEAD_WRITE_INTERVAL_MS. */
  set(origin: string, head: FeedHead): void {
    this.heads.set(origin, head);
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => this.options.counters.increment('feeds.sparse.heads_write_errors'));
    }, HEAD_WRITE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Writes the heads now if any moved (kept entries first: the file never names a head whose kept entries are not on disk). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.catch(() => undefined).then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const heads: HeadsDocument['heads'] = {};
      for (const [origin, head] of this.heads) if (head.hash !== null) heads[origin] = { seq: head.seq, hash: head.hash };
      try {
        await this.options.flushLogs();
        await mkdir(this.options.dir, { recursive: true });
        await this.file.write({ v: HEADS_FORMAT, heads });
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    });
    return this.writing;
  }
}

/** The kept entries of a sparse log with seq >= fromSeq, oldest first (a binary search over positions finds the first). */
export async function* readKept(log: SegmentLog, fromSeq: number, limit = Number.POSITIVE_INFINITY): AsyncGenerator<FeedEntry> {
  const { firstSeq, nextSeq } = log.stats();
  let lo = firstSeq;
  let hi = nextSeq;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const seq = await seqAt(log, mid);
    if (seq === undefined || seq >= fromSeq) hi = mid;
    else lo = mid + 1;
  }
  let left = limit;
  for await (const record of log.read(lo)) {
    if (left-- <= 0) return;
    yield parseEntry(record.payload);
  }
}

/**
 * Kept entries and relayed ones (each in seq order, none in both) merged,
 * from the first on and only while each is the next seq: a peer is never
 * sent entries with a hole between them.
 */
export async function* unbrokenRun(kept: AsyncIterable<FeedEntry> | undefined, relayed: readonly FeedEntry[], limit = Number.POSITIVE_INFINITY): AsyncGenerator<FeedEntry> {
  const keptEntries = kept?.[Symbol.asyncIterator]();
  let nextKept = await keptEntries?.next();
  let r = 0;
  let last: number | undefined;
  try {
    for (let left = limit; left > 0; left--) {
      const fromKept = nextKept && !nextKept.done ? nextKept.value : undefined;
      const fromRelay = relayed[r];
      const entry = fromKept && (!fromRelay || fromKept.seq < fromRelay.seq) ? fromKept : fromRelay;
      if (!entry || (last !== undefined && entry.seq !== last + 1)) return;
      if (entry === fromKept) nextKept = await keptEntries?.next();
      else r++;
      last = entry.seq;
      yield entry;
    }
  } finally {
    await keptEntries?.return?.(undefined);
  }
}

/** The last kept entry of a sparse log, if any. */
export async function lastKept(log: SegmentLog): Promise<FeedEntry | undefined> {
  const { firstSeq, nextSeq } = log.stats();
  if (nextSeq <= firstSeq) return undefined;
  for await (const record of log.read(nextSeq - 1, 1)) return parseEntry(record.payload);
  return undefined;
}

async function seqAt(log: SegmentLog, position: number): Promise<number | undefined> {
  for await (const record of log.read(position, 1)) return parseEntry(record.payload).seq;
  return undefined;
}

/**
 * Drops the oldest sealed segments of a sparse log while no entry in them is
 * kept any more (past every rule's maxAge); resolves to the entries dropped.
 * Whole segments only (append-only files): an expired entry beside a kept
 * one stays on disk, unread (reads skip it), until its segment goes.
 */
export async function dropExpired(log: SegmentLog, keeps: (entry: FeedEntry) => boolean): Promise<number> {
  let dropped = 0;
  for (let oldest = log.oldestSealed(); oldest; oldest = log.oldestSealed()) {
    let anyKept = false;
    for await (const record of log.read(oldest.firstSeq, oldest.count)) {
      if (keeps(parseEntry(record.payload))) {
        anyKept = true;
        break;
      }
    }
    if (anyKept) break;
    const n = await log.dropOldestSegment();
    if (n === 0) break;
    dropped += n;
  }
  return dropped;
}
