/**
 * Single-use memory of accepted link tokens, keyed on (node id, nonce) and
 * kept until the token expires. It is saved (atomic write-then-rename) so a
 * restarted node still refuses a token it accepted just before, and it is
 * bounded: in total, and per node (a trusted node that connects without end
 * cannot push others' nonces out); over a bound the token is refused, not an
 * unexpired nonce forgotten.
 */
import { readFile } from 'node:fs/promises';
import type { Counters } from '../counters.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export interface ReplayCacheOptions {
  /** Where to keep it; none = memory only. */
  file?: string;
  counters?: Counters;
  maxEntries?: number;
  maxPerNode?: number;
}

export class ReplayCache {
  /** `${nodeId}:${nonce}` -> expiresAt (ms), oldest first. */
  private readonly seen = new Map<string, number>();
  private readonly perNode = new Map<string, number>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly options: ReplayCacheOptions = {}) {}

  async load(now: number): Promise<void> {
    if (!this.options.file) return;
    try {
      const stored = JSON.parse(await readFile(this.options.file, 'utf8')) as { seen?: unknown };
      for (const item of Array.isArray(stored.seen) ? stored.seen as unknown[] : []) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number') continue;
        const [key, expiresAt] = item as [string, number];
        if (expiresAt > now && this.seen.size < this.maxEntries) this.add(key, expiresAt);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.counters?.increment('mesh.replay_file_unreadable');
    }
  }

  /** 'fresh' (and remembered until `expiresAt`) if this node's nonce was not seen before. */
  remember(nodeId: string, nonce: string, expiresAt: number, now: number): ReplayVerdict {
    this.forgetExpired(now);
    const key = `${nodeId}:${nonce}`;
    if (this.seen.has(key)) return 'replayed';
    if (this.seen.size >= this.maxEntries || (this.perNode.get(nodeId) ?? 0) >= (this.options.maxPerNode ?? 100)) return 'full';
    this.add(key, expiresAt);
    this.save();
    return 'fresh';
  }

  get size(): number {
    return this.seen.size;
  }

  async stop(): Promise<void> {
    await this.writing;
  }

  private get maxEntries(): number {
    return this.options.maxEntries ?? 10_000;
  }

  private add(key: string, expiresAt: number): void {
    this.seen.set(key, expiresAt);
    const nodeId = key.slice(0, key.indexOf(':'));
    this.perNode.set(nodeId, (this.perNode.get(nodeId) ?? 0) + 1);
  }

  private forgetExpired(now: number): void {
    for (const [key, expiresAt] of this.seen) {
      if (expiresAt > now) continue;
      this.seen.delete(key);
      const nodeId = key.slice(0, key.indexOf(':'));
      const left = (this.perNode.get(nodeId) ?? 1) - 1;
      if (left > 0) this.perNode.set(nodeId, left);
      else this.perNode.delete(nodeId);
    }
  }

  /** One write at a time; changes made meanwhile go out in the next one. */
  private save(): void {
    const file = this.options.file;
    if (!file) return;
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      await writeFileAtomic(file, `${JSON.stringify({ v: 1, seen: [...this.seen] })}\n`, { mode: 0o600 });
    }).catch(() => this.options.counters?.increment('mesh.replay_file_write_errors'));
  }
}
