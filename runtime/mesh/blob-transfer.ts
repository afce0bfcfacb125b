/**
 * Blob transfer: files too big for the feeds (a runtime release, 13-20 MiB)
 * move between linked neighbours in checked chunks, named by a descriptor
 * (blob-descriptor.ts) that someone trusted vouched for.
 *
 * - serve(descriptor, file) lets linked peers ask for chunks of that one
 *   file, checked against the descriptor first; nothing else on disk is ever
 *   reachable, since a request names a sha256, never a path.
 * - fetch(descriptor, dest) asks linked peers for chunks (blob-fetch.ts) and
 *   then serves the file too, so a blob spreads hop by hop beyond the
 *   neighbours of the node that first served it.
 *
 * A neighbour may be hostile: requests are answered only on a link that is
 * up (as wants are), at most chunksPerSecond per peer (token bucket), with at
 * most MAX_SERVE_READS chunk reads at once, each read from disk when asked
 * (never the whole blob in memory). Every refusal is counted.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Counters } from '../counters.js';
import { ApiaryError, describeError, ErrorCodes, isApiaryError } from '../errors.js';
import type { Logger } from '../log.js';
import { chunkLength, decodeBlobDescriptor, describeBlobFile, readFully, sha256Of, DEFAULT_MAX_BLOB_BYTES, type BlobDescriptor } from './blob-descriptor.js';
import { BlobFetch, type BlobFetchOptions, type BlobFetchResult } from './blob-fetch.js';
import type { MeshHeader } from './mesh-protocol.js';
import { WantRateLimit } from './want-rate-limit.js';

export type { BlobDescriptor } from './blob-descriptor.js';
export type { BlobFetchOptions, BlobFetchResult, BlobProgress } from './blob-fetch.js';

/** Blobs fetched at once by one node. */
export const MAX_CONCURRENT_BLOB_FETCHES = 4;
/** Chunk reads (for peers' requests) at once: bounds the memory serving takes. */
export const MAX_SERVE_READS = 8;

export interface BlobTransferOptions {
  readonly counters: Counters;
  readonly logger: Logger;
  /** Chunk requests answered per peer and second, with this burst (mesh.budgets.blobChunksPerSecond, blobChunkBurst). */
  readonly budget: { readonly chunksPerSecond: number; readonly chunkBurst: number };
  /** Largest blob served or fetched unless a fetch says otherwise. */
  readonly maxBlobBytes?: number;
  /** Peers that can be asked now: linked, up and known. */
  peers(): readonly string[];
  /** Our link to `peerId` is up (an answer goes out on it). */
  linked(peerId: string): boolean;
  send(peerId: string, header: MeshHeader, lines?: readonly Buffer[]): boolean;
}

type BlobMessage = Extract<MeshHeader, { t: 'blob-want' | 'blob' | 'blob-none' }>;

export class BlobTransfer {
  private readonly served = new Map<string, { descriptor: BlobDescriptor; file: string }>();
  private readonly fetches = new Map<string, { fetch: BlobFetch; done: Promise<unknown> }>();
  private readonly limit: WantRateLimit;
  private reads = 0;
  private stopped = false;

  constructor(private readonly options: BlobTransferOptions) {
    this.limit = new WantRateLimit({ perSecond: options.budget.chunksPerSecond, burst: options.budget.chunkBurst });
  }

  private get maxBytes(): number {
    return this.options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
  }

  /**
   * Serves `file` as the blob `descriptor` names, once the file is checked
   * against it (read chunk by chunk). Throws BLOB_DESCRIPTOR_INVALID for a
   * bad descriptor, BLOB_INVALID for a file that does not match it.
   */
  async serve(descriptor: BlobDescriptor, file: string): Promise<void> {
    const checked = decodeBlobDescriptor(descriptor, this.maxBytes);
    const actual = await describeBlobFile(file, checked.chunkBytes).catch((err: unknown) => {
      throw new ApiaryError(ErrorCodes.BLOB_INVALID, `cannot serve ${file}: ${describeError(err)}`, { cause: err });
    });
    if (actual.sha256 !== checked.sha256 || actual.size !== checked.size || actual.chunks.some((hash, i) => hash !== checked.chunks[i])) {
      throw new ApiaryError(ErrorCodes.BLOB_INVALID, `cannot serve ${file} as blob ${checked.sha256}: the file (${actual.size} bytes, sha256 ${actual.sha256}) does not match the descriptor`, {
        hint: 'serve the very file the descriptor was built from (describeBlobFile)',
      });
    }
    this.served.set(checked.sha256, { descriptor: checked, file: path.resolve(file) });
  }

  /** Stops serving a blob (the file is left alone); false if it was not served. */
  unserve(sha256: string): boolean {
    return this.served.delete(sha256);
  }

  /** sha256 of each blob served. */
  serving(): string[] {
    return [...this.served.keys()];
  }

  /**
   * Fetches the blob into `dest` from linked peers, resuming from
   * `dest + '.part'` if an earlier fetch left one, and serves it once in
   * place. Waits (with backoff) while no peer has it, for as long as it
   * takes: end it with options.signal. Rejects with BLOB_DESCRIPTOR_INVALID,
   * BLOB_BUSY (already fetching it, or MAX_CONCURRENT_BLOB_FETCHES at once),
   * BLOB_FETCH_ABORTED (signal, or the mesh stopped), BLOB_INVALID (the whole
   * file does not match: the .part is removed) or STORAGE_IO.
   */
  async fetch(descriptor: BlobDescriptor, dest: string, options: BlobFetchOptions = {}): Promise<BlobFetchResult> {
    const checked = decodeBlobDescriptor(descriptor, options.maxBytes ?? this.maxBytes);
    if (this.stopped) throw aborted('the mesh is stopped');
    if (options.signal?.aborted) throw aborted('its signal was aborted before it began');
    if (this.fetches.has(checked.sha256)) throw new ApiaryError(ErrorCodes.BLOB_BUSY, `blob ${checked.sha256} is being fetched already`, { hint: 'wait for that fetch, or abort it' });
    if (this.fetches.size >= MAX_CONCURRENT_BLOB_FETCHES) {
      throw new ApiaryError(ErrorCodes.BLOB_BUSY, `${this.fetches.size} blobs are being fetched already, the most at once`, { hint: 'fetch it once one of them ends' });
    }
    const { counters, logger } = this.options;
    const fetch = new BlobFetch(checked, path.resolve(dest), { counters, logger, peers: () => this.options.peers(), send: (peer, header) => this.options.send(peer, header) }, options);
    const onAbort = () => fetch.abort(aborted('its signal was aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = fetch.run();
    this.fetches.set(checked.sha256, { fetch, done: done.catch(() => undefined) });
    try {
      const result = await done;
      if (!this.served.has(checked.sha256)) this.served.set(checked.sha256, { descriptor: checked, file: result.path });
      return result;
    } catch (err) {
      if (isApiaryError(err, ErrorCodes.BLOB_FETCH_ABORTED)) counters.increment('mesh.blobs.fetch_aborted');
      if (isApiaryError(err)) throw err;
      throw new ApiaryError(ErrorCodes.STORAGE_IO, `blob ${checked.sha256}: cannot write ${dest}: ${describeError(err)}`, {
        cause: err, hint: 'give a destination in a directory that exists, is writable and has room for the blob',
      });
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.fetches.delete(checked.sha256);
    }
  }

  /** A peer linked (its hello came, or our link to it came up): fetches that wait ask it at once. */
  peerUp(peerId: string): void {
    for (const { fetch } of this.fetches.values()) fetch.peerUp(peerId);
  }

  /** Our link to a peer went down: requests out to it are asked of others. */
  peerDown(peerId: string): void {
    for (const { fetch } of this.fetches.values()) fetch.peerDown(peerId);
  }

  /** A blob message from an authenticated, known peer (the mesh checked that). */
  async received(from: string, header: BlobMessage, lines: readonly Buffer[]): Promise<void> {
    if (this.stopped) return;
    if (header.t === 'blob-want') return this.answer(from, header.blob, header.index);
    const fetching = this.fetches.get(header.blob);
    if (!fetching) {
      this.options.counters.increment('mesh.rejected.blob_unsolicited');
      return;
    }
    fetching.fetch.received(from, header, lines);
  }

  /** Aborts every fetch (each keeps its .part) and waits for them to close their files. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = [...this.fetches.values()];
    for (const { fetch } of running) fetch.abort(aborted('the mesh stopped'));
    await Promise.all(running.map((f) => f.done));
  }

  private async answer(from: string, blob: string, index: number): Promise<void> {
    const { counters, logger } = this.options;
    // The answer goes out on our link to the peer: without one, read nothing.
    if (!this.options.linked(from)) {
      counters.increment('mesh.rejected.blob_no_link');
      return;
    }
    if (!this.limit.take(from)) {
      counters.increment('mesh.rejected.blob_rate');
      return;
    }
    const served = this.served.get(blob);
    if (!served || index >= served.descriptor.chunks.length) {
      this.options.send(from, { t: 'blob-none', blob, index });
      return;
    }
    if (this.reads >= MAX_SERVE_READS) {
      counters.increment('mesh.rejected.blob_busy');
      return;
    }
    this.reads++;
    let bytes: Buffer | undefined;
    try {
      bytes = await readChunk(served.file, served.descriptor, index);
    } catch (err) {
      logger.warn({ err: describeError(err), file: served.file }, 'blob: cannot read a chunk of a served file');
    } finally {
      this.reads--;
    }
    if (!bytes || sha256Of(bytes) !== served.descriptor.chunks[index]) {
      // Changed or gone under us since serve(): never send what does not match.
      counters.increment('mesh.blobs.serve_unreadable');
      this.options.send(from, { t: 'blob-none', blob, index });
      return;
    }
    if (this.options.send(from, { t: 'blob', blob, index }, [Buffer.from(bytes.toString('base64'), 'latin1')])) {
      counters.increment('mesh.blobs.chunks_served');
      counters.increment('mesh.blobs.bytes_served', bytes.length);
    }
  }
}

async function readChunk(file: string, descriptor: BlobDescriptor, index: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const length = chunkLength(descriptor, index);
    return await readFully(handle, Buffer.alloc(length), length, index * descriptor.chunkBytes);
  } finally {
    await handle.close();
  }
}

function aborted(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.BLOB_FETCH_ABORTED, `blob fetch aborted: ${why}`, { hint: 'fetch it again: the chunks already fetched are kept in its .part file' });
}
