/**
 * An append-only stream stored as a directory of segment files
 * `<20-digit first seq>.seg`, each a run of frames (see record-frame.ts).
 *
 * Design choices, for an SD card and kill -9 / power cuts:
 * - one fd, append-only writes, serialised through a promise chain, so a
 *   file only ever grows by whole frames in seq order;
 * - seqs are implicit (segment first seq + index), so nothing but frames is
 *   written and there is no index file to keep consistent;
 * - recovery trusts only the CRC-valid prefix of each segment and truncates
 *   the rest, counting what it drops;
 * - retention deletes whole old segments (one unlink, no rewrite).
 */
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { fsyncDir } from './atomic-json-file.js';
import { encodeRecord, FRAME_HEADER_BYTES, scanFrames, type ScanOptions } from './record-frame.js';
import type { AppendOnlyStream, StoredRecord, StreamStats } from './stream-store.js';

export interface SegmentLogOptions {
  readonly dir: string;
  readonly name: string;
  /** A new segment starts when the next frame would take the active one past this. */
  readonly segmentBytes: number;
  /** When all segments together exceed this, the oldest whole segments are deleted. */
  readonly maxBytes: number;
  /** Sealed segments last written longer ago than this are deleted too (counted); omitted = no age bound. */
  readonly maxAgeMs?: number;
  /** seq of the first record of a new, empty log (a feed joined midway starts there); default 0. */
  readonly initialSeq?: number;
  readonly counters?: Counters;
}

interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  count: number;
  bytes: number;
  /** Wall time of the last write (the file's mtime after a restart), for the age bound. */
  lastWriteAt: number;
  /** File offset of every INDEX_EVERY-th frame (0, N, 2N, ...): a read from the middle starts near its record. */
  marks: number[];
}

interface FileScan {
  /** File offset where the valid frames end. */
  readonly end: number;
  readonly count: number;
  readonly stop: 'end' | 'incomplete' | 'corrupt';
}

export const SEGMENT_NAME = /^(\d{20})\.seg$/;
const SEGMENT_MODE = 0o600;
/** Read size: large enough to amortise syscalls, small enough for a 512 MB board. */
const READ_CHUNK = 64 * 1024;
/**
 * Frames per index mark. A read from seq n skips at most this many frames
 * (plus a chunk) instead of the whole segment before n (issue 10, finding 11:
 * a small catch-up request cost a segment of reads); memory: one number per
 * this many frames.
 */
const INDEX_EVERY = 64;

export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.seg`;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(what: string, err: unknown): ApiaryError {
  if (err instanceof ApiaryError) return err;
  return new ApiaryError(ErrorCodes.STORAGE_IO, `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    hint: 'check that the data directory is writable and the SD card is not full or failing',
    cause: err,
  });
}

/**
 * Yields the payloads of the frames in [start, end) of a file, reading in
 * chunks so memory stays bounded by one chunk plus one frame; returns where
 * and why it stopped.
 */
export async function* readFrames(
  fh: FileHandle,
  start: number,
  end: number,
  options: ScanOptions = {},
  onRead: (bytes: number) => void = () => undefined,
): AsyncGenerator<Buffer, FileScan, undefined> {
  let buf = Buffer.alloc(0);
  let bufStart = start; // file offset of buf[0]
  let readPos = start;
  let count = 0;
  for (;;) {
    const scan = scanFrames(buf, options);
    for (const payload of scan.payloads) {
      count += 1;
      yield payload;
    }
    bufStart += scan.end;
    buf = buf.subarray(scan.end);
    if (scan.stop === 'corrupt') return { end: bufStart, count, stop: 'corrupt' };
    const want = Math.min(Math.max(READ_CHUNK, scan.needed - buf.length), end - readPos);
    // want === 0: the range is read; bytesRead === 0: the file is shorter than `end`.
    const chunk = want > 0 ? Buffer.allocUnsafeSlow(want) : undefined;
    const bytesRead = chunk ? (await fh.read(chunk, 0, want, readPos)).bytesRead : 0;
    if (!chunk || bytesRead === 0) return { end: bufStart, count, stop: buf.length === 0 ? 'end' : 'incomplete' };
    readPos += bytesRead;
    onRead(bytesRead);
    const fresh = chunk.subarray(0, bytesRead);
    buf = buf.length === 0 ? fresh : Buffer.concat([buf, fresh]);
  }
}

async function scanFile(fh: FileHandle, start: number, end: number, options: ScanOptions = {}): Promise<FileScan> {
  const frames = readFrames(fh, start, end, options);
  for (;;) {
    const step = await frames.next();
    if (step.done) return step.value;
  }
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

export class SegmentLog implements AppendOnlyStream {
  readonly name: string;
  private readonly options: SegmentLogOptions;
  private state: 'new' | 'open' | 'closed' = 'new';
  /** Oldest first; the last one is the active segment. */
  private segments: Segment[] = [];
  private active: FileHandle | undefined;
  private nextSeq = 0;
  private totalBytes = 0;
  private droppedByRetention = 0;
  private droppedCorrupt = 0;
  private droppedCorruptBytes = 0;
  /** Set when a failed write could not be rolled back: appending more would bury good frames behind garbage. */
  private broken: ApiaryError | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Appended since the last sync: an idle stream costs no fdatasync (SD-card writes, CPU). */
  private unsynced = false;

  constructor(options: SegmentLogOptions) {
    this.name = options.name;
    this.options = options;
  }

  /** Creates the directory, recovers every segment and opens the last for appending. */
  async open(): Promise<void> {
    if (this.state === 'open') return;
    const { dir, segmentBytes, maxBytes } = this.options;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= 0 || !Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`stream ${this.name}: segmentBytes and maxBytes must be positive integers`);
    }
    this.segments = [];
    this.totalBytes = 0;
    this.broken = undefined;
    let lastFh: FileHandle | undefined;
    try {
      const created = await mkdir(dir, { recursive: true });
      if (created !== undefined) await fsyncDir(path.dirname(created));
      // Zero-padded names sort lexically in seq order.
      const names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
      const found = names.map((n) => ({ firstSeq: Number(n.slice(0, 20)), path: path.join(dir, n) }));
      for (const [i, { firstSeq, path: file }] of found.entries()) {
        if (!Number.isSafeInteger(firstSeq)) throw this.corrupt(`segment ${file} has a seq beyond 2^53`);
        const next = found[i + 1];
        const isLast = next === undefined;
        // The last segment's handle stays open as the append handle ('a+': read to recover, then append).
        const fh = await open(file, isLast ? 'a+' : 'r+');
        if (isLast) lastFh = fh;
        try {
          const segment = await this.recover(fh, firstSeq, file, next?.firstSeq);
          if (next !== undefined && firstSeq + segment.count > next.firstSeq) {
            throw this.corrupt(`segments ${file} and ${next.path} overlap in seq`);
          }
          this.segments.push(segment);
          this.totalBytes += segment.bytes;
        } finally {
          if (!isLast) await fh.close();
        }
      }
      const last = this.segments.at(-1);
      if (last === undefined) {
        const initialSeq = this.options.initialSeq ?? 0;
        const file = path.join(dir, segmentFileName(initialSeq));
        lastFh = await open(file, 'a+', SEGMENT_MODE);
        await fsyncDir(dir);
        this.segments.push({ firstSeq: initialSeq, path: file, count: 0, bytes: 0, lastWriteAt: Date.now(), marks: [] });
        this.nextSeq = initialSeq;
      } else {
        this.nextSeq = last.firstSeq + last.count;
      }
      this.active = lastFh;
      this.state = 'open';
      // maxBytes may have been lowered since the last run.
      await this.enforceRetention();
    } catch (err) {
      this.state = 'new';
      this.active = undefined;
      await lastFh?.close().catch(() => undefined);
      throw ioError(`could not open stream ${this.name} in ${dir}`, err);
    }
  }

  /** Keeps the CRC-valid prefix of one segment, truncating and counting whatever follows it. */
  private async recover(fh: FileHandle, firstSeq: number, file: string, nextFirstSeq: number | undefined): Promise<Segment> {
    const { size, mtimeMs } = await fh.stat();
    const marks: number[] = [];
    let offset = 0;
    let frame = 0;
    const frames = readFrames(fh, 0, size);
    let step = await frames.next();
    for (; !step.done; step = await frames.next(), frame++) {
      if (frame % INDEX_EVERY === 0) marks.push(offset);
      offset += FRAME_HEADER_BYTES + step.value.length;
    }
    const valid = step.value;
    if (valid.end < size) {
      // Count the frames behind the bad one by following their length fields
      // (a torn tail counts as one); between segments the seq gap is exact.
      const rest = await scanFile(fh, valid.end, size, { verify: false });
      let dropped = rest.count + (rest.stop === 'end' ? 0 : 1);
      if (nextFirstSeq !== undefined) dropped = Math.max(dropped, nextFirstSeq - (firstSeq + valid.count));
      await fh.truncate(valid.end);
      await fh.datasync();
      this.droppedCorrupt += dropped;
      this.droppedCorruptBytes += size - valid.end;
      this.options.counters?.increment(`storage.${this.name}.dropped_corrupt`, dropped);
    }
    return { firstSeq, path: file, count: valid.count, bytes: valid.end, lastWriteAt: mtimeMs, marks };
  }

  append(payload: Buffer): Promise<number> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    let frame: Buffer;
    try {
      // Framed (and so copied) now: later changes to the caller's buffer do not leak in.
      frame = encodeRecord(payload);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.enqueue(() => this.write(frame));
  }

  private async write(frame: Buffer): Promise<number> {
    if (this.broken) throw this.broken;
    let segment = this.activeSegment();
    if (segment.bytes > 0 && segment.bytes + frame.length > this.options.segmentBytes) segment = await this.rotate();
    const fh = this.active as FileHandle;
    try {
      await writeAll(fh, frame);
    } catch (err) {
      // A partial frame must not stay: frames appended after it would be lost at recovery.
      await fh.truncate(segment.bytes).catch((undo: unknown) => {
        this.broken = ioError(`stream ${this.name}: a failed write could not be undone, reopen the stream`, undo);
      });
      throw ioError(`could not append to stream ${this.name}`, err);
    }
    const seq = this.nextSeq;
    if (segment.count % INDEX_EVERY === 0) segment.marks.push(segment.bytes);
    this.unsynced = true;
    this.nextSeq += 1;
    segment.count += 1;
    segment.bytes += frame.length;
    segment.lastWriteAt = Date.now();
    this.totalBytes += frame.length;
    await this.enforceRetention();
    return seq;
  }

  /** Starts a new segment at nextSeq. On failure nothing changes and the old segment stays active. */
  private async rotate(): Promise<Segment> {
    const old = this.active as FileHandle;
    const file = path.join(this.options.dir, segmentFileName(this.nextSeq));
    try {
      // Sealed segments are synced once, so a power cut cannot leave a hole before newer data.
      await old.datasync();
      const fh = await open(file, 'a', SEGMENT_MODE);
      try {
        await fsyncDir(this.options.dir);
      } catch (err) {
        await fh.close().catch(() => undefined);
        await unlink(file).catch(() => undefined);
        throw err;
      }
      this.active = fh;
    } catch (err) {
      throw ioError(`could not start a new segment for stream ${this.name}`, err);
    }
    await old.close().catch(() => undefined);
    const segment: Segment = { firstSeq: this.nextSeq, path: file, count: 0, bytes: 0, lastWriteAt: Date.now(), marks: [] };
    this.segments.push(segment);
    return segment;
  }

  /**
   * Deletes oldest segments (never the active one) while over maxBytes. It
   * runs after a record is already stored, so it never fails the append; a
   * failed delete is counted and retried on the next append.
   */
  private async enforceRetention(): Promise<void> {
    let deleted = false;
    try {
      const maxAge = this.options.maxAgeMs;
      const tooOld = (segment: Segment) => maxAge !== undefined && segment.lastWriteAt < Date.now() - maxAge;
      while (this.segments.length > 1 && (this.totalBytes > this.options.maxBytes || tooOld(this.segments[0] as Segment))) {
        await this.deleteOldest();
        deleted = true;
      }
      if (deleted) await fsyncDir(this.options.dir);
    } catch {
      this.options.counters?.increment(`storage.${this.name}.retention_errors`);
    }
  }

  private async deleteOldest(): Promise<number> {
    const oldest = this.segments[0] as Segment;
    await unlink(oldest.path).catch((err: unknown) => {
      if (errno(err) !== 'ENOENT') throw err;
    });
    this.segments.shift();
    this.totalBytes -= oldest.bytes;
    this.droppedByRetention += oldest.count;
    this.options.counters?.increment(`storage.${this.name}.dropped_retention`, oldest.count);
    return oldest.count;
  }

  /**
   * Deletes the oldest sealed segment now (a budget over several streams
   * needs room), never the active one; resolves to the records dropped (0:
   * nothing to drop). Seqs stay as they are: the stream just starts later.
   */
  dropOldestSegment(): Promise<number> {
    if (this.state !== 'open') return Promise.resolve(0);
    return this.enqueue(async () => {
      if (this.segments.length <= 1) return 0;
      const dropped = await this.deleteOldest();
      await fsyncDir(this.options.dir);
      return dropped;
    });
  }

  /**
   * Continues the log at `seq` (> nextSeq): the seqs in between are kept
   * elsewhere (a stream view whose records were in the node's feed). The next
   * append starts a segment named for `seq`; an empty active segment is
   * replaced, so the jump survives a restart. No-op when seq <= nextSeq.
   */
  skipTo(seq: number): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    return this.enqueue(async () => {
      if (seq <= this.nextSeq) return;
      const before = this.nextSeq;
      const active = this.activeSegment();
      this.nextSeq = seq;
      try {
        if (active.count > 0) {
          await this.rotate();
          return;
        }
        // An empty active segment is replaced, not kept: a file named for the old seq would put the log back there at the next open.
        const old = this.active as FileHandle;
        const file = path.join(this.options.dir, segmentFileName(seq));
        this.active = await open(file, 'a+', SEGMENT_MODE);
        this.segments.pop();
        this.segments.push({ firstSeq: seq, path: file, count: 0, bytes: 0, lastWriteAt: Date.now(), marks: [] });
        await old.close().catch(() => undefined);
        await unlink(active.path).catch(() => undefined);
        await fsyncDir(this.options.dir);
      } catch (err) {
        if (this.activeSegment() === active) this.nextSeq = before;
        throw ioError(`could not continue stream ${this.name} at seq ${seq}`, err);
      }
    });
  }

  /**
   * Seq after the last record the log holds (0 when it holds none): below
   * nextSeq when the log was moved on past seqs kept elsewhere (skipTo).
   */
  recordsEnd(): number {
    const last = this.segments.findLast((s) => s.count > 0);
    return last ? last.firstSeq + last.count : 0;
  }

  /** Bytes on disk in all segments (what stats().bytes says, without building the stats). */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Bytes in sealed segments: what dropOldestSegment could free, one segment at a time. */
  sealedBytes(): number {
    return this.totalBytes - this.activeSegment().bytes;
  }

  /** The oldest segment if it is sealed (so dropOldestSegment would drop it): its first seq and record count. */
  oldestSealed(): { firstSeq: number; count: number } | undefined {
    const oldest = this.segments[0];
    return this.segments.length > 1 && oldest ? { firstSeq: oldest.firstSeq, count: oldest.count } : undefined;
  }

  /** Applies the bounds now (the age bound matters for a stream nobody writes to). */
  prune(): Promise<void> {
    if (this.state !== 'open') return Promise.resolve();
    return this.enqueue(() => this.enforceRetention());
  }

  /**
   * Records with seq >= fromSeq, oldest first, as of when iteration starts.
   * Reads only up to the indexed end of each segment, so a concurrent append
   * is never seen half-written; a segment deleted by retention meanwhile is skipped.
   */
  async *read(fromSeq = 0, limit = Number.POSITIVE_INFINITY): AsyncGenerator<StoredRecord, void, undefined> {
    if (this.state !== 'open') throw this.closedError();
    let left = limit;
    if (!(left > 0)) return;
    const snapshot = this.segments.map((s) => ({ ...s }));
    for (const segment of snapshot) {
      if (segment.count === 0 || segment.firstSeq + segment.count <= fromSeq) continue;
      let fh: FileHandle;
      try {
        fh = await open(segment.path, 'r');
      } catch (err) {
        if (errno(err) === 'ENOENT') continue;
        throw ioError(`could not read stream ${this.name}`, err);
      }
      try {
        // Start at the index mark at or before fromSeq: the frames before it are not read at all.
        const mark = Math.min(Math.floor(Math.max(0, fromSeq - segment.firstSeq) / INDEX_EVERY), segment.marks.length - 1);
        const skipped = mark > 0 ? mark * INDEX_EVERY : 0;
        const frames = readFrames(fh, mark > 0 ? (segment.marks[mark] as number) : 0, segment.bytes, {}, (bytes) => this.options.counters?.increment('storage.read_bytes', bytes));
        let seq = segment.firstSeq + skipped;
        let step = await frames.next();
        for (; !step.done; step = await frames.next()) {
          if (seq >= fromSeq) {
            yield { seq, payload: step.value };
            left -= 1;
            if (left <= 0) return;
          }
          seq += 1;
        }
        if (step.value.stop !== 'end' || step.value.count !== segment.count - skipped) {
          throw this.corrupt(`segment ${segment.path} changed on disk while open`);
        }
      } finally {
        await fh.close();
      }
    }
  }

  /** Forces every record appended so far to stable storage (fdatasync: data and size). */
  flush(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    return this.enqueue(async () => {
      if (!this.unsynced) return;
      this.unsynced = false;
      try {
        await (this.active as FileHandle).datasync();
      } catch (err) {
        this.unsynced = true;
        throw ioError(`could not sync stream ${this.name}`, err);
      }
    });
  }

  stats(): StreamStats {
    const oldest = this.segments.find((s) => s.count > 0);
    return {
      name: this.name,
      bytes: this.totalBytes,
      segments: this.segments.length,
      firstSeq: oldest?.firstSeq ?? this.nextSeq,
      nextSeq: this.nextSeq,
      droppedByRetention: this.droppedByRetention,
      droppedCorrupt: this.droppedCorrupt,
      droppedCorruptBytes: this.droppedCorruptBytes,
    };
  }

  /** Lets queued appends finish, syncs and closes; later appends fail with STORAGE_CLOSED. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closed';
    await this.queue;
    const fh = this.active;
    this.active = undefined;
    if (!fh) return;
    try {
      await fh.datasync();
    } catch (err) {
      throw ioError(`could not sync stream ${this.name} on close`, err);
    } finally {
      await fh.close();
    }
  }

  private enqueue<R>(task: () => Promise<R>): Promise<R> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private activeSegment(): Segment {
    return this.segments.at(-1) as Segment;
  }

  private corrupt(message: string): ApiaryError {
    return new ApiaryError(ErrorCodes.STORAGE_CORRUPT, `stream ${this.name}: ${message}`, {
      hint: 'move the stream directory aside to start the stream afresh; its records are not needed to run the node',
    });
  }

  private closedError(): ApiaryError {
    return new ApiaryError(ErrorCodes.STORAGE_CLOSED, `stream ${this.name} is not open`);
  }
}
