/**
 * Catch-up between two nodes, independent of the transport: each side says
 * what it has (latest seq per origin), and the other sends, for every origin,
 * not only its own, exactly the entries the first one lacks, oldest first,
 * in bounded batches. Nothing is kept in memory between batches: what to send
 * next is derived again from the peer's latest have-vector and the disk.
 */
import type { Counters } from '../counters.js';
import { MAX_ENTRIES_MESSAGE_BYTES } from './mesh-protocol.js';
import { encodeEntry, parseEntry, verifyEntry, type FeedEntry } from './feed-entry.js';
import { BatchBuilder, messageBudget, type MessageBudget } from './entry-batches.js';
import type { ApplyResult, FeedHead } from './feed-store.js';

export type HaveVector = Record<string, number>;

/**
 * What catch-up and gossip need of a node's feeds: the feed store on disk
 * (feed-store.ts) on a board, an in-memory one in the simulation (test/sim).
 */
export interface FeedLog {
  /** origin -> highest seq held. */
  have(): Record<string, number>;
  head(origin: string): FeedHead;
  /** The hash of a recently stored entry, if it is one (a duplicate is then skipped before its signature is checked). */
  recentHash(origin: string, seq: number): string | undefined;
  countDuplicate(): void;
  apply(entry: FeedEntry, startsFeed?: boolean): Promise<ApplyResult>;
  read(origin: string, fromSeq?: number, limit?: number): AsyncIterable<FeedEntry>;
}

/** Bytes of a batch message: one MQTT message stays under the broker's limits. */
export const DEFAULT_BATCH_BYTES = MAX_ENTRIES_MESSAGE_BYTES;

/** Origins and seqs the peer lacks, as [origin, fromSeq] pairs. */
export function missingRanges(mine: HaveVector, theirs: HaveVector): [string, number][] {
  return Object.entries(mine)
    .filter(([origin, seq]) => seq > (theirs[origin] ?? 0))
    .map(([origin]) => [origin, (theirs[origin] ?? 0) + 1] as [string, number])
    .sort(([a], [b]) => a.localeCompare(b));
}

export interface Batch {
  readonly entries: FeedEntry[];
  /** Per origin, the seq this batch starts at when the entries before it are gone here (retention). */
  readonly starts: Record<string, number>;
  readonly bytes: number;
}

/**
 * Entries answering `want` (origin -> first seq wanted), oldest first per
 * origin, in one message the peer accepts: `budget` (entry-batches.ts) counts
 * the header and certificates too; a number is the byte limit alone.
 */
export async function collectBatch(store: FeedLog, want: Readonly<Record<string, number>>, budget: number | MessageBudget = DEFAULT_BATCH_BYTES): Promise<Batch> {
  const builder = new BatchBuilder(typeof budget === 'number' ? messageBudget(undefined, budget) : budget);
  const starts: Record<string, number> = {};
  const done = () => ({ entries: builder.entries, starts, bytes: builder.entryBytes });
  for (const origin of Object.keys(want).sort()) {
    const fromSeq = want[origin] ?? 1;
    let first = true;
    for await (const entry of store.read(origin, fromSeq)) {
      if (!builder.add(entry)) return done();
      if (first && entry.seq > fromSeq) starts[origin] = entry.seq;
      first = false;
    }
  }
  return done();
}

/** The next batch of entries a peer with have-vector `theirs` lacks. */
export async function nextBatch(store: FeedLog, theirs: HaveVector, maxBytes = DEFAULT_BATCH_BYTES): Promise<FeedEntry[]> {
  return (await collectBatch(store, Object.fromEntries(missingRanges(store.have(), theirs)), maxBytes)).entries;
}

/** A batch on the wire: entries as JSON lines, so one bad line spoils only itself. */
export function encodeBatch(entries: readonly FeedEntry[]): Buffer {
  return Buffer.from(entries.map((e) => encodeEntry(e).toString('utf8')).join('\n'), 'utf8');
}

/**
 * Decodes and verifies entry lines from a peer. Malformed lines, bad
 * signatures, and entries `refuse` names a reason for (an untrusted origin)
 * are counted under feeds.rejected.<reason> and skipped, never thrown.
 */
/**
 * Parses and verifies received entry lines. `refuse` names why a verified
 * entry is not wanted (an untrusted origin). `held` says an entry is one
 * already stored (its hash is a recent one of ours): it is counted as a
 * duplicate and skipped before its signature is checked, the costly part,
 * so live gossip arriving by several paths costs little.
 */
export function decodeLines(
  lines: readonly Buffer[],
  counters: Counters,
  refuse: (entry: FeedEntry) => string | undefined = () => undefined,
  held: (entry: FeedEntry) => boolean = () => false,
  verify: (entry: FeedEntry) => FeedEntry = verifyEntry,
): FeedEntry[] {
  const entries: FeedEntry[] = [];
  for (const line of lines) {
    try {
      const parsed = parseEntry(line);
      if (held(parsed)) continue;
      const entry = verify(parsed);
      const reason = refuse(entry);
      if (reason) counters.increment(`feeds.rejected.${reason}`);
      else entries.push(entry);
    } catch (err) {
      counters.increment(`feeds.rejected.${(err as { code?: string }).code ?? 'unknown'}`);
    }
  }
  return entries;
}

export type BatchOutcome = Record<ApplyResult | 'rejected', number>;

/** Applies verified entries per origin in seq order (a batch that arrived shuffled still applies whole). */
export async function applyEntries(store: FeedLog, entries: FeedEntry[], starts: Readonly<Record<string, number>> = {}): Promise<{ outcome: BatchOutcome; applied: FeedEntry[]; refused: Set<string>; duplicated: Set<string> }> {
  const outcome: BatchOutcome = { applied: 0, duplicate: 0, gap: 0, fork: 0, refused: 0, rejected: 0 };
  const applied: FeedEntry[] = [];
  /** Origins with an entry already held: one that came by another path while this batch was checked. */
  const duplicated = new Set<string>();
  /** Origins with an entry over a replication budget: not worth asking the sender again until it has more. */
  const refused = new Set<string>();
  const sorted = [...entries].sort((a, b) => (a.origin === b.origin ? a.seq - b.seq : a.origin.localeCompare(b.origin)));
  for (const entry of sorted) {
    const result = await store.apply(entry, starts[entry.origin] === entry.seq);
    outcome[result]++;
    if (result === 'applied') applied.push(entry);
    if (result === 'refused') refused.add(entry.origin);
    if (result === 'duplicate') duplicated.add(entry.origin);
  }
  return { outcome, applied, refused, duplicated };
}

/** Verifies and applies a received batch (encodeBatch's format). */
export async function applyBatch(store: FeedLog, bytes: Buffer, counters: Counters): Promise<BatchOutcome> {
  const lines = bytes.toString('utf8').split('\n').filter((l) => l.length > 0).map((l) => Buffer.from(l, 'utf8'));
  const entries = decodeLines(lines, counters);
  const { outcome } = await applyEntries(store, entries);
  outcome.rejected = lines.length - entries.length;
  return outcome;
}
