/**
 * The streams kept in the node's own feed (issue 16, "one write path"): a
 * shared reading, model output or decision is written once, as an entry of
 * the signed feed, and its stream (`readings`, `models.<id>`, `decisions`)
 * is an index over the feed: stream seq -> feed seq, held in memory.
 *
 * Nothing is written per record. The only file is `streams/feed-parts.json`
 * (atomic, written when a stream starts a run in the feed): for each stream,
 * the parts of it that live in the feed, each from a feed seq on, numbered
 * from a stream seq on. The index itself is rebuilt at start by reading the
 * feed from the oldest part on (entries of the recorder's types), so it can
 * never disagree with what recovery kept of the feed after a kill -9.
 * Entries before a stream's first part are not its records: a data dir of
 * the old layout wrote every shared record twice, and those copies are the
 * stream's own segment log, read as a frozen prefix.
 *
 * A stream sealed for recipients (`mesh.private`, or decisions kept to this
 * node) is indexed the same way, over its private entries: a sealed part's
 * records are the entries this release sealed (opened with the node's own
 * derived content key, one HKDF, no X25519: mesh/private-box.ts). Sealed
 * parts are kept in a file of their own, `streams/sealed-parts.json`, so a
 * release from before them still reads `feed-parts.json`; its copies of a
 * sealed record (a plaintext in the log, a box with a random key in the
 * feed) are told apart by that key and never indexed twice.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Counters } from '../counters.js';
import { encodeEntry, entryHash, type FeedEntry } from '../mesh/feed-entry.js';
import type { Mesh } from '../mesh/mesh.js';
import { PRIVATE_ENTRY_TYPE } from '../mesh/private-entries.js';
import { AtomicJsonFile } from '../storage/atomic-json-file.js';
import { FRAME_HEADER_BYTES } from '../storage/record-frame.js';
import { SEGMENT_NAME } from '../storage/segment-log.js';
import { readSegmentDir } from '../storage/segment-reader.js';
import type { StoredRecord } from '../storage/stream-store.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointFile } from './feed-index-checkpoint.js';

/** The node's own feed, as the index reads it (the mesh's FeedStore, for this node's origin). */
export interface OwnFeed {
  /** A private entry this node sealed, opened (undefined for any other entry: mesh.openOwn). */
  openOwn(entry: FeedEntry): { type: string; body: unknown } | undefined;
  readonly origin: string;
  /** Seq of the newest entry (0: none). */
  head(): number;
  /** Seq of the oldest entry still held (retention drops from the front). */
  firstSeq(): number;
  read(fromSeq: number, limit?: number): AsyncIterable<FeedEntry>;
  /** Forces appended entries to disk (storage.fsyncInterval 0: after every record). */
  flush(): Promise<void>;
}

/** This node's feed in the mesh's feed store. */
export function ownFeed(mesh: Pick<Mesh, 'nodeId' | 'store' | 'openOwn'>): OwnFeed {
  const origin = mesh.nodeId;
  return {
    origin,
    openOwn: (entry) => mesh.openOwn(entry),
    head: () => mesh.store.head(origin).seq,
    firstSeq: () => mesh.store.stats().find((f) => f.origin === origin)?.firstSeq ?? 1,
    read: (fromSeq, limit) => mesh.store.read(origin, fromSeq, limit, false),
    flush: () => mesh.store.flush(origin),
  };
}

/** Feed entry types the recorder writes, and the stream each belongs to. */
export function streamOfEntry(entry: FeedEntry): string | undefined {
  if (entry.type !== 'model') return streamOfType(entry.type, undefined);
  try {
    return streamOfType(entry.type, JSON.parse(entry.body));
  } catch {
    return undefined;
  }
}

function streamOfType(type: string, body: unknown): string | undefined {
  if (type === 'reading') return 'readings';
  if (type === 'decision') return 'decisions';
  if (type !== 'model' || body === null || typeof body !== 'object') return undefined;
  const model = (body as { model?: unknown }).model;
  return typeof model === 'string' && /^[a-z0-9][a-z0-9_.-]{0,63}$/i.test(model) ? `models.${model}` : undefined;
}

/** A record of the feed: the stream it belongs to, and its payload (decoded on demand: the index needs only the name). */
interface FeedRecord {
  readonly name: string;
  payload(): Buffer;
}

const partSchema = z.strictObject({ base: z.number().int().min(0), fromFeedSeq: z.number().int().min(1) });
const partsFileSchema = z.strictObject({
  version: z.literal(1),
  origin: z.string().regex(/^[a-z2-7]{12}$/),
  streams: z.record(z.string().max(80), z.array(partSchema).max(1000)),
});
type PartsFile = z.infer<typeof partsFileSchema>;

/** One run of a stream in the feed: its records are the stream's entries with feed seq >= fromFeedSeq (up to the next part). */
interface Part {
  /** Kept sealed (private entries: sealed-parts.json) or in plain (feed-parts.json). */
  readonly sealed: boolean;
  /** Stream seq of the part's first record (those dropped by the feed's retention included). */
  base: number;
  readonly fromFeedSeq: number;
  /** Records dropped from the front by the feed's retention (seqs stay as they are). */
  dropped: number;
  /** Feed seq of each kept record, in order, and its size on disk. */
  readonly feedSeqs: number[];
  readonly sizes: number[];
  bytes: number;
}

export interface FeedPartStats {
  readonly firstSeq: number;
  readonly nextSeq: number;
  readonly bytes: number;
  readonly records: number;
  readonly dropped: number;
}

export class FeedIndex {
  private readonly file: AtomicJsonFile<PartsFile>;
  private readonly sealedFile: AtomicJsonFile<PartsFile>;
  /** The index as of the last clean stop (feed-index-checkpoint.ts). */
  private readonly checkpointFile: AtomicJsonFile<CheckpointFile>;
  private doc: PartsFile | undefined;
  private sealedDoc: PartsFile | undefined;
  private checkpointRaw: unknown;
  /** The parts files as last read or written: what a checkpoint is valid with. */
  private readonly written: CheckpointFile['files'] = { plain: {}, sealed: {} };
  /** The newest own entry the index has seen (read at start or added since). */
  private lastSeen: { seq: number; hash: () => string } | undefined;
  private rebuildFailed = false;
  /** The index holds every entry the feed had when attached (restore() finished). */
  private scanned = false;
  private readonly parts = new Map<string, Part[]>();
  private feed: OwnFeed | undefined;
  private scan: Promise<void> = Promise.resolve();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(dir: string, private readonly counters: Counters) {
    this.file = new AtomicJsonFile<PartsFile>(path.join(dir, 'feed-parts.json'));
    this.sealedFile = new AtomicJsonFile<PartsFile>(path.join(dir, 'sealed-parts.json'));
    // Compact: tens of thousands of numbers, written once per stop.
    this.checkpointFile = new AtomicJsonFile<CheckpointFile>(path.join(dir, 'feed-index-checkpoint.json'), { space: 0 });
  }

  /** Reads the parts files (absent in a data dir of the old layout: no stream is in the feed yet) and the checkpoint. */
  async load(): Promise<void> {
    [this.doc, this.sealedDoc, this.checkpointRaw] = await Promise.all([
      this.readFile(this.file),
      this.readFile(this.sealedFile),
      this.checkpointFile.read().catch(() => ({ unreadable: true })), // refused (and counted) at attach
    ]);
    this.written.plain = this.doc?.streams ?? {};
    this.written.sealed = this.sealedDoc?.streams ?? {};
  }

  private async readFile(file: AtomicJsonFile<PartsFile>): Promise<PartsFile | undefined> {
    const raw = await file.read();
    if (raw === null) return undefined;
    const parsed = partsFileSchema.safeParse(raw);
    if (parsed.success) return parsed.data;
    // Counted, and read as absent: the streams' own logs stay readable; records in the feed are not indexed.
    this.counters.increment('storage.feed_index.unreadable');
    return undefined;
  }

  /** The feed whose entries the parts index: the index is rebuilt from it in the background (ready()). */
  attach(feed: OwnFeed): void {
    this.feed = feed;
    for (const sealed of [false, true]) {
      const doc = sealed ? this.sealedDoc : this.doc;
      if (doc && doc.origin !== feed.origin) {
        // A new identity in an old data dir: the parts point into another origin's feed.
        this.counters.increment('storage.feed_index.other_origin');
        if (sealed) this.sealedDoc = undefined;
        else this.doc = undefined;
        continue;
      }
      for (const [name, parts] of Object.entries(doc?.streams ?? {})) {
        const list = this.parts.get(name) ?? [];
        list.push(...parts.map((p) => ({ sealed, base: p.base, fromFeedSeq: p.fromFeedSeq, dropped: 0, feedSeqs: [], sizes: [], bytes: 0 })));
        this.parts.set(name, list.sort((a, b) => a.fromFeedSeq - b.fromFeedSeq));
      }
    }
    const head = feed.head();
    this.scan = this.restore(feed, head);
    this.scan.then(() => { this.scanned = true; }, () => {
      this.counters.increment('storage.feed_index.rebuild_errors');
      this.rebuildFailed = true; // the index is partial: never saved as a checkpoint
    });
  }

  /** Takes the index from the checkpoint when it fits this feed and parts files, then reads the feed after it (or all of it). */
  private async restore(feed: OwnFeed, head: number): Promise<void> {
    const raw = this.checkpointRaw;
    this.checkpointRaw = undefined;
    if (raw === null || raw === undefined) return this.rebuild(feed, head);
    const checkpoint = decodeCheckpoint(raw, { origin: feed.origin, files: { plain: this.doc?.streams ?? {}, sealed: this.sealedDoc?.streams ?? {} } });
    let held: FeedEntry | undefined;
    if (!('refused' in checkpoint)) {
      for await (const entry of feed.read(checkpoint.head.seq, 1)) held = entry;
    }
    if ('refused' in checkpoint || held?.seq !== checkpoint.head.seq || entryHash(held) !== checkpoint.head.hash) {
      // A checkpoint is a shortcut: one that does not fit is counted, and the feed is read whole as before.
      this.counters.increment(`storage.feed_index.checkpoint_${'refused' in checkpoint ? checkpoint.refused : 'stale'}`);
      return this.rebuild(feed, head);
    }
    this.parts.clear();
    for (const [name, list] of checkpoint.parts) {
      this.parts.set(name, list.map((p) => ({ ...p, feedSeqs: [...p.feedSeqs], sizes: [...p.sizes], bytes: p.sizes.reduce((a, b) => a + b, 0) })));
    }
    const { hash } = checkpoint.head;
    this.lastSeen = { seq: checkpoint.head.seq, hash: () => hash };
    this.counters.increment('storage.feed_index.checkpoint_used');
    return this.rebuild(feed, head, checkpoint.head.seq);
  }

  /** Forces the feed's appended entries to disk. */
  flush(): Promise<void> {
    return this.feed?.flush() ?? Promise.resolve();
  }

  get attached(): boolean {
    return this.feed !== undefined;
  }

  /** Resolves once the index holds every entry the feed had when attached. */
  ready(): Promise<void> {
    return this.scan.catch(() => undefined);
  }

  /**
   * Starts a part of `name` at stream seq `base`, sealed or in plain: durable
   * before the first entry of it is appended, so a crash in between leaves
   * an empty part, never an entry that no part claims.
   */
  startPart(name: string, base: number, sealed = false): Promise<void> {
    const feed = this.feed;
    if (!feed) return Promise.reject(new Error('the feed index has no feed'));
    const part: Part = { sealed, base, fromFeedSeq: feed.head() + 1, dropped: 0, feedSeqs: [], sizes: [], bytes: 0 };
    const list = this.parts.get(name) ?? [];
    list.push(part);
    this.parts.set(name, list);
    return this.save(sealed);
  }

  /** Whether the stream's last part is of that kind and can take more records at stream seq `next` (else a new part starts). */
  continues(name: string, next: number, sealed = false): boolean {
    const last = this.parts.get(name)?.at(-1);
    return last !== undefined && last.sealed === sealed && end(last) === next;
  }

  /** Whether the stream's records go on in a sealed part (its own log holds none after it). */
  sealedLast(name: string): boolean {
    return this.parts.get(name)?.at(-1)?.sealed === true;
  }

  /** Indexes an entry just appended to the feed for `name`. */
  add(name: string, entry: FeedEntry): void {
    this.seen(entry);
    const part = this.parts.get(name)?.at(-1);
    if (!part || entry.seq < part.fromFeedSeq) return;
    insert(part, entry.seq, encodeEntry(entry).length + FRAME_HEADER_BYTES);
  }

  /** Stream seq after the last record kept in the feed (0 when none). */
  nextSeq(name: string): number {
    const last = this.parts.get(name)?.at(-1);
    return last ? end(last) : 0;
  }

  stats(name: string): FeedPartStats | undefined {
    const parts = this.parts.get(name);
    if (!parts || parts.length === 0) return undefined;
    this.prune(parts);
    const last = parts[parts.length - 1] as Part;
    const first = parts.find((p) => p.feedSeqs.length > 0) ?? last;
    let bytes = 0;
    let records = 0;
    let dropped = 0;
    for (const p of parts) {
      bytes += p.bytes;
      records += p.feedSeqs.length;
      dropped += p.dropped;
    }
    return { firstSeq: first.base + first.dropped, nextSeq: end(last), bytes, records, dropped };
  }

  /** Records of `name` in the feed with stream seq >= fromSeq, oldest first: each entry's body, as the stream held it. */
  async *read(name: string, fromSeq: number, limit = Number.POSITIVE_INFINITY): AsyncGenerator<StoredRecord, void, undefined> {
    const feed = this.feed;
    const parts = this.parts.get(name);
    if (!feed || !parts) return;
    this.prune(parts);
    let left = limit;
    for (const part of parts) {
      const first = part.base + part.dropped;
      const start = Math.max(0, fromSeq - first);
      // Copied: appends during the read must not shift what this read walks.
      const wanted = part.feedSeqs.slice(start, start + Math.min(left, part.feedSeqs.length));
      if (wanted.length === 0 || left <= 0) continue;
      let i = 0;
      for await (const entry of feed.read(wanted[0] as number)) {
        while (i < wanted.length && (wanted[i] as number) < entry.seq) i += 1; // dropped meanwhile
        if (i >= wanted.length) break;
        if (wanted[i] !== entry.seq) continue;
        const record = this.recordOf(feed, entry, part.sealed);
        // Indexed as its own, so it opens; if it ever does not, the record is skipped, never shown as another's.
        if (record?.name === name) yield { seq: first + start + i, payload: record.payload() };
        i += 1;
        if ((left -= 1) <= 0 || i >= wanted.length) break;
      }
      if (left <= 0) return;
    }
  }

  /**
   * With the mesh off (the feed not open): the stream seq after every record
   * the feed could hold for `name`, from how far the feed on disk goes. The
   * stream's own log goes on from there, so no seq is used twice.
   */
  async offlineNextSeq(name: string, headOf: (origin: string) => Promise<number>): Promise<number> {
    const last = this.doc?.streams[name]?.at(-1);
    if (!this.doc || !last) return 0;
    const head = await headOf(this.doc.origin);
    return last.base + Math.max(0, head - last.fromFeedSeq + 1);
  }

  /**
   * Lets a pending parts-file write finish, then saves the index as a
   * checkpoint (the node closes its storage after the mesh, so the feed
   * entries it covers are on disk).
   */
  async close(): Promise<void> {
    await this.writes;
    const feed = this.feed;
    const seen = this.lastSeen;
    // A stop during the start's scan does not wait for it (it can take seconds on a board): no checkpoint then.
    if (!feed || !seen || !this.scanned || this.rebuildFailed) return;
    const checkpoint = encodeCheckpoint(feed.origin, { seq: seen.seq, hash: seen.hash() }, this.written, this.parts);
    await this.checkpointFile.write(checkpoint).catch(() => this.counters.increment('storage.feed_index.checkpoint_write_errors'));
  }

  private seen(entry: FeedEntry): void {
    if (entry.seq > (this.lastSeen?.seq ?? 0)) this.lastSeen = { seq: entry.seq, hash: () => entryHash(entry) };
  }

  private serialised(sealed: boolean): PartsFile['streams'] {
    const feedFirst = this.feed?.firstSeq() ?? 1;
    const out: PartsFile['streams'] = {};
    for (const [name, all] of this.parts) {
      const parts = all.filter((p) => p.sealed === sealed);
      // Rebased past what retention dropped, so the next start numbers the kept records as this run does.
      if (parts.length > 0) out[name] = parts.map((p) => ({ base: p.base + p.dropped, fromFeedSeq: p.feedSeqs[0] ?? Math.max(p.fromFeedSeq, p.dropped > 0 ? feedFirst : 1) }));
    }
    return out;
  }

  /** Writes the file of that kind of parts (plain parts only ever go to feed-parts.json, which older releases read). */
  private save(sealed: boolean): Promise<void> {
    const feed = this.feed;
    if (!feed) return Promise.resolve();
    const doc: PartsFile = { version: 1, origin: feed.origin, streams: this.serialised(sealed) };
    const file = sealed ? this.sealedFile : this.file;
    const write = this.writes.then(async () => {
      await file.write(doc);
      this.written[sealed ? 'sealed' : 'plain'] = doc.streams;
    });
    this.writes = write.catch(() => this.counters.increment('storage.feed_index.write_errors'));
    return write;
  }

  /**
   * What an entry of the own feed is to the streams: a plain record of the
   * recorder's types, or (when sealed parts are asked for) a private entry
   * this release sealed. Undefined for anything else.
   */
  private recordOf(feed: OwnFeed, entry: FeedEntry, sealed: boolean): FeedRecord | undefined {
    if (!sealed) {
      const name = streamOfEntry(entry);
      return name === undefined ? undefined : { name, payload: () => Buffer.from(entry.body, 'utf8') };
    }
    const opened = feed.openOwn(entry);
    const name = opened && streamOfType(opened.type, opened.body);
    return name === undefined ? undefined : { name, payload: () => Buffer.from(JSON.stringify(opened?.body), 'utf8') };
  }

  /** Reads the feed from the oldest part on (after `after`), up to `head`, and indexes each entry into the part covering it. */
  private async rebuild(feed: OwnFeed, head: number, after = 0): Promise<void> {
    const all = [...this.parts.values()].flat();
    if (all.length === 0 || head <= after) return;
    // A part whose start the feed's retention dropped since the file was written numbers its kept
    // records from its base (how many went is not known): never past the next part's seqs.
    const feedFirst = feed.firstSeq();
    const from = Math.max(feedFirst, Math.min(...all.map((p) => p.fromFeedSeq)), after + 1);
    let read = 0;
    // Private entries are opened only from the first sealed part on (tasks, payments and questions are private too).
    const sealedFrom = Math.min(...all.filter((p) => p.sealed).map((p) => p.fromFeedSeq));
    for await (const entry of feed.read(from)) {
      if (entry.seq > head) break; // appended since attach: add() indexes those
      this.seen(entry);
      read += 1;
      const sealed = entry.type === PRIVATE_ENTRY_TYPE;
      if (sealed && entry.seq < sealedFrom) continue;
      const record = this.recordOf(feed, entry, sealed);
      const part = record && this.parts.get(record.name)?.findLast((p) => p.fromFeedSeq <= entry.seq);
      // A record goes to the part covering it only if that part is of its kind: a sealed record in a
      // plain part (or the reverse) was written by a release that kept it in the stream's own log.
      if (part?.sealed === sealed) insert(part, entry.seq, encodeEntry(entry).length + FRAME_HEADER_BYTES);
    }
    // What a start read of the feed to index it (after a checkpoint: only what came after).
    this.counters.increment('storage.feed_index.entries_read', read);
  }

  /** Forgets records the feed's retention dropped, counting them. */
  private prune(parts: Part[]): void {
    const feedFirst = this.feed?.firstSeq() ?? 0;
    const rebased = new Set<boolean>();
    for (const part of parts) {
      let n = 0;
      while (n < part.feedSeqs.length && (part.feedSeqs[n] as number) < feedFirst) n += 1;
      if (n === 0) continue;
      part.feedSeqs.splice(0, n);
      for (const size of part.sizes.splice(0, n)) part.bytes -= size;
      part.dropped += n;
      rebased.add(part.sealed);
    }
    // Kept in the files (rarely: once per segment the feed drops), so a restart numbers them the same.
    for (const sealed of rebased) this.save(sealed).catch(() => undefined);
  }
}

function end(part: Part): number {
  return part.base + part.dropped + part.feedSeqs.length;
}

/** In feed order: appends resolve in order, but an insert keeps the index right if two ever cross. */
function insert(part: Part, feedSeq: number, size: number): void {
  let i = part.feedSeqs.length;
  while (i > 0 && (part.feedSeqs[i - 1] as number) > feedSeq) i -= 1;
  if (part.feedSeqs[i - 1] === feedSeq) return;
  part.feedSeqs.splice(i, 0, feedSeq);
  part.sizes.splice(i, 0, size);
  part.bytes += size;
}

/** Seq of the newest whole entry of a feed directory on disk, read without opening it (its last segment only); 0 when none. */
export async function feedHeadOnDisk(dir: string): Promise<number> {
  const names = (await readdir(dir).catch(() => [])).filter((n) => SEGMENT_NAME.test(n)).sort();
  const last = names.at(-1);
  if (last === undefined) return 0;
  // Log position = feed seq - 1 (feed-store.ts).
  let head = Number(last.slice(0, 20));
  for await (const record of readSegmentDir(dir, head)) head = record.seq + 1;
  return head;
}
