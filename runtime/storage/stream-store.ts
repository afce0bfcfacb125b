/**
 * The storage seam: append-only streams (readings, model outputs, decisions)
 * and one small state document. Implementations live one per file beside this.
 */

import type { DeepReadonly } from '../deep-freeze.js';

/** One appended record as read back: its offset in the stream and its bytes. */
export interface StoredRecord {
  /** Monotonic position of the record in its stream, 0-based, never reused. */
  readonly seq: number;
  readonly payload: Buffer;
}

export interface StreamStats {
  readonly name: string;
  /** Bytes currently on disk for this stream (all segments). */
  readonly bytes: number;
  readonly segments: number;
  /** seq of the oldest record still kept, and the next seq to be written. */
  readonly firstSeq: number;
  readonly nextSeq: number;
  /** Records deleted by retention (bytes bound), counted, never silent. */
  readonly droppedByRetention: number;
  /** Torn or corrupt records discarded during recovery. */
  readonly droppedCorrupt: number;
  /** Bytes those records took (the torn tail cut off at recovery). */
  readonly droppedCorruptBytes: number;
  /** Of those, kept as entries of the node's own feed (one write path, runtime/core/feed-index.ts). */
  readonly inFeed?: { readonly records: number; readonly bytes: number };
}

export interface AppendOnlyStream {
  readonly name: string;
  open(): Promise<void>;
  /** Appends one record; resolves with its seq once handed to the OS. */
  append(payload: Buffer): Promise<number>;
  /** Reads records with seq >= fromSeq, oldest first. */
  read(fromSeq?: number, limit?: number): AsyncIterable<StoredRecord>;
  /** Forces written records to stable storage (fsync). */
  flush(): Promise<void>;
  stats(): StreamStats;
  close(): Promise<void>;
}

export interface StateStore<T extends object> {
  open(): Promise<void>;
  /** The current document (frozen copy). */
  get(): DeepReadonly<T>;
  /** Applies a change and persists it atomically (temp file, fsync, rename). */
  update(change: (draft: T) => void): Promise<void>;
  close(): Promise<void>;
}
