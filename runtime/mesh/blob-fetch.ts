/**
 * One blob being fetched from neighbours (blob-transfer.ts owns it).
 *
 * The file grows at `dest + '.part'`, each chunk written at its own offset
 * once its sha256 matches the descriptor. The done set is the .part file
 * itself: a restarted fetch (after a stop, a crash, kill -9 or a power cut)
 * hashes each chunk already there and asks only for the others, so a chunk
 * torn by a crash is simply fetched again and no chunk needs its own fsync.
 * When every chunk is in, the whole file's sha256 is checked, then it is
 * fsynced and renamed into place.
 *
 * At most WINDOW requests are out at a time, at most PER_PEER of them to one
 * peer. A peer that has not got the blob (blob-none), does not answer in
 * time, or cannot be sent to, is asked again only after a backoff; one that
 * sends a bad chunk is never asked again for this blob. While no peer can be
 * asked, the fetch waits for a backoff to end or a peer to link.
 */
import { createHash } from 'node:crypto';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { ApiaryError, describeError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { fsyncDir } from '../storage/atomic-json-file.js';
import { chunkLength, readFully, sha256Of, type BlobDescriptor } from './blob-descriptor.js';
import type { MeshHeader } from './mesh-protocol.js';

/** Chunk requests out at once for one fetch, and to one peer. */
export const BLOB_FETCH_WINDOW = 8;
export const BLOB_FETCH_PER_PEER = 4;

export interface BlobProgress {
  /** Chunks verified and written (resumed ones included), of `total`. */
  readonly done: number;
  readonly total: number;
  /** Chunks found already in the .part file when the fetch started. */
  readonly resumed: number;
}

export interface BlobFetchOptions {
  /** Aborts the fetch: it rejects with BLOB_FETCH_ABORTED and keeps its .part file for a later fetch. */
  signal?: AbortSignal;
  /** After each chunk written (and once at the start, with what was resumed). */
  onProgress?: (progress: BlobProgress) => void;
  /** How long a peer has to answer one chunk request before another is asked (default 10 s). */
  requestTimeoutMs?: number;
  /** Wait before asking again a peer that did not have the blob or did not answer: doubles from initialMs to maxMs (default 1 s to 30 s). */
  retry?: { initialMs: number; maxMs: number };
  /** Largest blob accepted (default: the mesh's, 64 MiB). */
  maxBytes?: number;
}

export interface BlobFetchResult {
  readonly path: string;
  readonly chunksResumed: number;
  readonly chunksFetched: number;
}

export interface BlobFetchHost {
  readonly counters: Counters;
  readonly logger: Logger;
  /** Peers that can be asked now: linked, up and known. */
  peers(): readonly string[];
  send(peerId: string, header: MeshHeader): boolean;
}

type ChunkAnswer = Extract<MeshHeader, { t: 'blob' | 'blob-none' }>;

export class BlobFetch {
  private readonly pending = new Set<number>();
  private readonly asked = new Map<number, { peer: string; timer: NodeJS.Timeout }>();
  private readonly banned = new Set<string>();
  private readonly cooling = new Map<string, { until: number; delayMs: number }>();
  private readonly writes = new Set<Promise<void>>();
  private handle: FileHandle | undefined;
  private wake: NodeJS.Timeout | undefined;
  private done = 0;
  private resumed = 0;
  private fetched = 0;
  private settled = false;
  private finish: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly requestTimeoutMs: number;
  private readonly retry: { initialMs: number; maxMs: number };

  constructor(
    private readonly descriptor: BlobDescriptor,
    private readonly dest: string,
    private readonly host: BlobFetchHost,
    private readonly options: BlobFetchOptions,
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.retry = options.retry ?? { initialMs: 1_000, maxMs: 30_000 };
  }

  get part(): string {
    return `${this.dest}.part`;
  }

  /** Fetches the blob into place; rejects with BLOB_FETCH_ABORTED on abort(), BLOB_INVALID if the whole file does not match. */
  async run(): Promise<BlobFetchResult> {
    const { descriptor } = this;
    const total = descriptor.chunks.length;
    if (await this.alreadyInPlace()) return { path: this.dest, chunksResumed: total, chunksFetched: 0 };
    this.handle = await openPart(this.part);
    try {
      await this.handle.truncate(descriptor.size);
      await this.scanPart();
      this.progress();
      if (this.done < total) {
        await new Promise<void>((resolve, reject) => {
          this.finish = { resolve, reject };
          if (this.failure) reject(this.failure);
          else this.pump();
        });
      }
      if (this.failure) throw this.failure;
      await this.verifyAndPlace();
      this.host.counters.increment('mesh.blobs.fetched');
      return { path: this.dest, chunksResumed: this.resumed, chunksFetched: this.fetched };
    } finally {
      this.settle();
      await Promise.allSettled([...this.writes]);
      await this.handle.close().catch(() => undefined);
      this.handle = undefined;
    }
  }

  /** Ends the fetch with `err` (abort, mesh stop, a write that failed): no timer or request is left. */
  abort(err: Error): void {
    if (this.settled) return;
    this.failure ??= err;
    this.settle();
    this.finish?.reject(this.failure);
  }

  /** A peer (re)linked: it may hold the blob now, so its backoff ends. */
  peerUp(peerId: string): void {
    if (this.settled) return;
    this.cooling.delete(peerId);
    this.pump();
  }

  /** Our link to a peer went down: what was asked of it is asked of others now, not after a timeout. */
  peerDown(peerId: string): void {
    if (this.settled) return;
    this.release(peerId);
    this.pump();
  }

  /** An answer from `from`; anything not answering a request out to that very peer is counted and dropped. */
  received(from: string, header: ChunkAnswer, lines: readonly Buffer[]): void {
    const { counters } = this.host;
    const request = this.asked.get(header.index);
    if (this.settled || request?.peer !== from) {
      counters.increment('mesh.rejected.blob_unsolicited');
      return;
    }
    clearTimeout(request.timer);
    this.asked.delete(header.index);
    if (header.t === 'blob-none') {
      this.coolDown(from);
      this.pending.add(header.index);
      return this.pump();
    }
    const bytes = this.verified(header.index, lines[0]);
    if (!bytes) {
      counters.increment('mesh.rejected.blob_chunk_bad');
      this.host.logger.warn({ peer: from, blob: this.descriptor.sha256, index: header.index }, 'blob: a peer sent a chunk that does not match the descriptor; it is not asked again for this blob');
      this.ban(from);
      this.pending.add(header.index);
      return this.pump();
    }
    this.cooling.delete(from);
    this.write(header.index, bytes);
    this.pump();
  }

  /** The chunk's bytes if the line is its canonical base64 and its length and sha256 are the descriptor's. */
  private verified(index: number, line: Buffer | undefined): Buffer | undefined {
    const length = chunkLength(this.descriptor, index);
    if (!line || line.length !== 4 * Math.ceil(length / 3)) return undefined;
    const text = line.toString('latin1');
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length !== length || bytes.toString('base64') !== text) return undefined;
    return sha256Of(bytes) === this.descriptor.chunks[index] ? bytes : undefined;
  }

  private write(index: number, bytes: Buffer): void {
    const handle = this.handle;
    if (!handle) return;
    const work = (async () => {
      let at = 0;
      while (at < bytes.length) at += (await handle.write(bytes, at, bytes.length - at, index * this.descriptor.chunkBytes + at)).bytesWritten;
    })().then(() => {
      this.done++;
      this.fetched++;
      this.host.counters.increment('mesh.blobs.chunks_fetched');
      this.host.counters.increment('mesh.blobs.bytes_fetched', bytes.length);
      this.progress();
      if (this.done === this.descriptor.chunks.length) this.finish?.resolve();
    }, (err: unknown) => this.abort(new ApiaryError(ErrorCodes.STORAGE_IO, `cannot write ${this.part}: ${describeError(err)}`, { cause: err })));
    this.writes.add(work);
    void work.finally(() => this.writes.delete(work));
  }

  /** Asks peers for pending chunks, up to the window; while nobody can be asked, wakes at the end of the first backoff. */
  private pump(): void {
    if (this.settled) return;
    clearTimeout(this.wake);
    this.wake = undefined;
    const now = Date.now();
    const load = new Map<string, number>();
    for (const peer of this.host.peers()) if (!this.banned.has(peer) && (this.cooling.get(peer)?.until ?? 0) <= now) load.set(peer, 0);
    for (const { peer } of this.asked.values()) if (load.has(peer)) load.set(peer, (load.get(peer) ?? 0) + 1);
    for (const index of this.pending) {
      if (this.asked.size >= BLOB_FETCH_WINDOW) break;
      // The least busy peer (ties: the first), under its own cap.
      let peer: string | undefined;
      for (const [id, n] of load) if (n < BLOB_FETCH_PER_PEER && (peer === undefined || n < (load.get(peer) ?? 0))) peer = id;
      if (peer === undefined) break;
      if (!this.host.send(peer, { t: 'blob-want', blob: this.descriptor.sha256, index })) {
        // Its link is down or busy: another peer, or this one after a backoff.
        load.delete(peer);
        this.coolDown(peer);
        continue;
      }
      this.pending.delete(index);
      load.set(peer, (load.get(peer) ?? 0) + 1);
      const asked = peer;
      const timer = setTimeout(() => this.timedOut(index, asked), this.requestTimeoutMs);
      timer.unref();
      this.asked.set(index, { peer, timer });
    }
    if (this.asked.size === 0 && this.pending.size > 0) {
      const soonest = Math.min(...[...this.cooling.values()].map((c) => c.until));
      const delay = Number.isFinite(soonest) ? Math.max(10, soonest - now) : this.retry.maxMs;
      this.wake = setTimeout(() => this.pump(), Math.min(delay, this.retry.maxMs));
      this.wake.unref();
    }
  }

  private timedOut(index: number, peer: string): void {
    if (this.asked.get(index)?.peer !== peer) return;
    this.asked.delete(index);
    this.host.counters.increment('mesh.blobs.chunk_timeouts');
    this.coolDown(peer);
    this.pending.add(index);
    this.pump();
  }

  /** The peer is asked again after a backoff; answers to requests sent before it began do not lengthen it. */
  private coolDown(peer: string): void {
    const { initialMs, maxMs } = this.retry;
    const before = this.cooling.get(peer);
    const now = Date.now();
    if (before && before.until > now) return;
    const delayMs = before ? Math.min(maxMs, before.delayMs * 2) : initialMs;
    this.cooling.set(peer, { until: now + Math.round(delayMs * (0.8 + Math.random() * 0.4)), delayMs });
  }

  /** A peer that sent a bad chunk is not asked again, and its other requests go back to the pending set. */
  private ban(peer: string): void {
    this.banned.add(peer);
    this.release(peer);
  }

  private release(peer: string): void {
    for (const [index, request] of this.asked) {
      if (request.peer !== peer) continue;
      clearTimeout(request.timer);
      this.asked.delete(index);
      this.pending.add(index);
    }
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.wake);
    this.wake = undefined;
    for (const request of this.asked.values()) clearTimeout(request.timer);
    this.asked.clear();
  }

  private progress(): void {
    try {
      this.options.onProgress?.({ done: this.done, total: this.descriptor.chunks.length, resumed: this.resumed });
    } catch (err) {
      this.host.logger.warn({ err: describeError(err) }, 'blob: onProgress threw');
    }
  }

  /** The destination already holds this very blob (a fetch done before a restart): nothing to do. */
  private async alreadyInPlace(): Promise<boolean> {
    const size = await stat(this.dest).then((s) => s.size, () => -1);
    if (size !== this.descriptor.size) return false;
    const handle = await open(this.dest, 'r');
    try {
      return (await this.wholeHash(handle)) === this.descriptor.sha256;
    } finally {
      await handle.close();
    }
  }

  /** Finds the chunks already in the .part file (each hashed), and makes the rest pending. */
  private async scanPart(): Promise<void> {
    const handle = this.handle as FileHandle;
    const buffer = Buffer.alloc(this.descriptor.chunkBytes);
    for (const [index, hash] of this.descriptor.chunks.entries()) {
      const bytes = await readFully(handle, buffer, chunkLength(this.descriptor, index), index * this.descriptor.chunkBytes);
      if (sha256Of(bytes) === hash) this.done++;
      else this.pending.add(index);
    }
    this.resumed = this.done;
    if (this.resumed > 0) this.host.counters.increment('mesh.blobs.chunks_resumed', this.resumed);
  }

  private async wholeHash(handle: FileHandle): Promise<string> {
    const whole = createHash('sha256');
    const buffer = Buffer.alloc(this.descriptor.chunkBytes);
    for (let index = 0; index < this.descriptor.chunks.length; index++) {
      whole.update(await readFully(handle, buffer, chunkLength(this.descriptor, index), index * this.descriptor.chunkBytes));
    }
    return whole.digest('hex');
  }

  /** Every chunk is in: the whole file must match too; then durable, then renamed into place. */
  private async verifyAndPlace(): Promise<void> {
    const handle = this.handle as FileHandle;
    if ((await this.wholeHash(handle)) !== this.descriptor.sha256) {
      this.host.counters.increment('mesh.blobs.fetch_invalid');
      await unlink(this.part).catch(() => undefined);
      throw new ApiaryError(ErrorCodes.BLOB_INVALID, `blob ${this.descriptor.sha256}: every chunk matched its hash, but the whole file does not match the descriptor's sha256`, {
        hint: 'the descriptor is inconsistent: build it with describeBlobFile() from the very file announced',
      });
    }
    await handle.sync();
    await rename(this.part, this.dest);
    await fsyncDir(path.dirname(this.dest));
  }
}

/** Opens (or creates) the .part file for positional reads and writes. */
async function openPart(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return open(file, 'w+');
  }
}
