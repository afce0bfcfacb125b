/**
 * Catch-up between two nodes, independent of the transport: each side says
 * what it has (latest seq per origin), and the other sends, for every origin,
 * not only its own, exactly the entries the first one lacks, oldest first,
 * in bounded batches. Nothing is kept in memory between batches: what to send
 * next is derived again from the peer's latest have-vector and the disk.
 */
import type { Counters } from '../counters.js';
import { decodeEntry, encodeEntry, type FeedEntry } from './feed-entry.js';
import type { ApplyResult, FeedStore } from './feed-store.js';

export type HaveVector = Record<string, number>;

/** Bytes of entries per batch: one MQTT message stays well under the broker's limits. */
export const DEFAULT_BATCH_BYTES = 256 * 1024;

/** Origins and seqs the peer lacks, as [origin, fromSeq] pairs. */
export function missingRanges(mine: HaveVector, theirs: HaveVector): [string, number][] {
  return Object.entries(mine)
    .filter(([origin, seq]) => seq > (theirs[origin] ?? 0))
    .map(([origin]) => [origin, (theirs[origin] ?? 0) + 1] as [string, number])
    .sort(([a], [b]) => a.localeCompare(b));
}

/** The next batch of entries the peer lacks, at most `maxBytes` (but at least one entry). */
export async function nextBatch(store: FeedStore, theirs: HaveVector, maxBytes = DEFAULT_BATCH_BYTES): Promise<FeedEntry[]> {
  const batch: FeedEntry[] = [];
  let bytes = 0;
  for (const [origin, fromSeq] of missingRanges(store.have(), theirs)) {
    for await (const entry of store.read(origin, fromSeq)) {
      const size = encodeEntry(entry).length;
      if (batch.length > 0 && bytes + size > maxBytes) return batch;
      batch.push(entry);
      bytes += size;
    }
  }
  return batch;
}

/** A batch on the wire: entries as JSON lines, so one bad line spoils only itself. */
export function encodeBatch(entries: readonly FeedEntry[]): Buffer {
  return Buffer.from(entries.map((e) => encodeEntry(e).toString('utf8')).join('\n'), 'utf8');
}

/**
 * Verifies and applies a received batch. Every line is checked on its own;
 * malformed lines and bad signatures are counted and skipped, never thrown.
 */
export async function applyBatch(store: FeedStore, bytes: Buffer, counters: Counters): Promise<Record<ApplyResult | 'rejected', number>> {
  const outcome: Record<ApplyResult | 'rejected', number> = { applied: 0, duplicate: 0, gap: 0, fork: 0, rejected: 0 };
  const entries: FeedEntry[] = [];
  for (const line of bytes.toString('utf8').split('\n')) {
    if (line.length === 0) continue;
    try {
      entries.push(decodeEntry(Buffer.from(line, 'utf8')));
    } catch (err) {
      outcome.rejected++;
      counters.increment(`feeds.rejected.${(err as { code?: string }).code ?? 'unknown'}`);
    }
  }
  // Per origin in seq order, so a batch that arrived shuffled still applies whole.
  entries.sort((a, b) => (a.origin === b.origin ? a.seq - b.seq : a.origin.localeCompare(b.origin)));
  for (const entry of entries) outcome[await store.apply(entry)]++;
  return outcome;
}
