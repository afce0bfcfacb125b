/**
 * The node's one small state document, kept with lowdb over an atomic,
 * fsyncing JSON adapter. Readers get a deep-frozen copy, so nothing outside
 * `update()` can change state without it being written.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { deepFreeze, type DeepReadonly } from '../deep-freeze.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { AtomicJsonFile, fsyncDir } from './atomic-json-file.js';
import type { StateStore } from './stream-store.js';

export interface LowdbStateStoreOptions<T> {
  readonly file: string;
  /** Used when the file does not exist yet; never when it is damaged. */
  readonly defaults: T;
  /** File mode of the state file (default 0o600). */
  readonly mode?: number;
}

export class LowdbStateStore<T extends object> implements StateStore<T> {
  readonly file: string;
  private readonly defaults: T;
  private readonly mode: number | undefined;
  private low: Low<T> | undefined;
  private closed = false;
  /** Serialises updates: each one starts from the result of the previous. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: LowdbStateStoreOptions<T>) {
    this.file = options.file;
    this.defaults = options.defaults;
    this.mode = options.mode;
  }

  /** Reads the file (defaults when missing). A damaged file throws STORAGE_CORRUPT. */
  async open(): Promise<void> {
    if (this.low && !this.closed) return;
    const created = await mkdir(path.dirname(this.file), { recursive: true });
    if (created !== undefined) await fsyncDir(path.dirname(created));
    const adapter = new AtomicJsonFile<T>(this.file, this.mode === undefined ? {} : { mode: this.mode });
    const low = new Low<T>(adapter, structuredClone(this.defaults));
    await low.read();
    // The document held by Low is frozen and replaced wholesale on update, so
    // get() can hand it out without copying.
    low.data = deepFreeze(structuredClone(low.data)) as T;
    this.low = low;
    this.closed = false;
  }

  /** The committed document, frozen all the way down: copy what you mean to change (restored state included). */
  get(): DeepReadonly<T> {
    return this.ready().data as DeepReadonly<T>;
  }

  /**
   * Runs `change` on a mutable copy and writes the result. If `change` throws
   * or the write fails, the stored document stays as it was.
   */
  update(change: (draft: T) => void): Promise<void> {
    // Checked now, not when the queue gets to it: an update after close() must fail.
    if (!this.low || this.closed) return Promise.reject(this.closedError());
    const low = this.low;
    const run = async (): Promise<void> => {
      const draft = structuredClone(low.data);
      change(draft);
      // Copy again so a caller that kept a reference to `draft` cannot alter
      // the committed document later.
      const next = deepFreeze(structuredClone(draft)) as T;
      const previous = low.data;
      low.data = next;
      try {
        await low.write();
      } catch (err) {
        low.data = previous;
        throw err;
      }
    };
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Lets queued updates finish; later calls fail with STORAGE_CLOSED. */
  async close(): Promise<void> {
    if (!this.low || this.closed) return;
    this.closed = true;
    await this.queue;
  }

  private ready(): Low<T> {
    if (!this.low || this.closed) throw this.closedError();
    return this.low;
  }

  private closedError(): ApiaryError {
    return new ApiaryError(ErrorCodes.STORAGE_CLOSED, `state store ${this.file} is not open`);
  }
}
