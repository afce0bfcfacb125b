/**
 * Range-based reconciliation of have-vectors (issue 16): what two nodes hold
 * of each feed (origin -> highest seq) is compared in cost proportional to
 * what differs, not to the number of origins. The idea is Negentropy's
 * (Doug Hoyte, "Range-Based Set Reconciliation", and Aljoscha Meyer's paper of
 * the same name, 2022): both sides sort their items by key (here the origin),
 * send a fingerprint per range of keys, and only ranges whose fingerprints
 * differ are split further, until a range is small enough to send whole.
 *
 * Items are (origin, seq) pairs; a range's fingerprint is the XOR of
 * sha256("origin:seq") over its items (its first 12 bytes sent), with the item count
 * beside it. XOR makes a range's fingerprint two lookups in a prefix table,
 * so a message of 64 ranges costs 64 binary searches whatever the range
 * sizes: a hostile peer cannot make one message cost O(origins) per range.
 * (A peer that lies about its fingerprints only keeps itself from learning
 * what we hold: it can withhold its own entries by other means anyway.)
 *
 * One message carries ranges in one of three forms:
 *   {lo, hi, fp, n}      my fingerprint of [lo, hi): compare and answer
 *   {lo, hi, have, end?} my items in [lo, hi) (all of them, or with `end`
 *                        only those the asker lacks or holds older): take
 *                        them; unless `end`, answer with what differs of mine
 *   {lo, hi, eq}         your fingerprint `eq` of [lo, hi) is mine too (echoed:
 *                        the asker's own items may have moved on meanwhile,
 *                        and it learns from the answer only if they did not)
 * Bounds: lo and hi are '' (below every id), a prefix of a node id (the
 * shortest that falls between two items), or '~' (above every id); [lo, hi)
 * holds the ids with lo <= id < hi.
 */
import { createHash } from 'node:crypto';

/** Ranges a message may carry; a bigger answer is sent as several messages. */
export const MAX_SUM_RANGES = 64;
/** Items one message may list (over all its `have` ranges): about 25 KiB of JSON. */
export const MAX_SUM_ITEMS = 1024;
/** A range with at most this many of the sender's items is sent whole rather than split. */
export const WHOLE_RANGE_ITEMS = 16;
/** Parts a differing range is split into. */
export const SPLIT_PARTS = 16;

export const RANGE_MIN = '';
export const RANGE_MAX = '~';

export type SumRange =
  | { lo: string; hi: string; fp: string; n: number }
  | { lo: string; hi: string; have: Record<string, number>; end?: true }
  | { lo: string; hi: string; eq: string };

/** A range's fingerprint: XOR of 16-byte item hashes (as four 32-bit words), base64url. */
type Words = [number, number, number, number];

const itemHashes = new Map<string, { seq: number; words: Words }>();
/** Item hashes kept between messages (origin -> hash of its current seq); past this the cache starts again. */
const MAX_CACHED_HASHES = 20_000;

function itemWords(origin: string, seq: number): Words {
  const cached = itemHashes.get(origin);
  if (cached?.seq === seq) return cached.words;
  const digest = createHash('sha256').update(`${origin}:${seq}`).digest();
  const words: Words = [digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)];
  if (itemHashes.size >= MAX_CACHED_HASHES) itemHashes.clear();
  itemHashes.set(origin, { seq, words });
  return words;
}

/** The first 12 bytes: 96 bits, so two unlike honest ranges agree by chance about once in 2^96 comparisons. */
function encode(words: Words): string {
  const out = Buffer.alloc(12);
  for (let i = 0; i < 3; i++) out.writeUInt32BE((words[i] as number) >>> 0, i * 4);
  return out.toString('base64url');
}

/** One side's items, sorted by origin, with prefix fingerprints: [lo, hi) in O(log n). */
export class HaveIndex {
  readonly origins: string[];
  private readonly seqs: number[];
  /** prefix[i]: XOR of the hashes of items [0, i). */
  private readonly prefix: Words[];

  constructor(have: Readonly<Record<string, number>>) {
    this.origins = Object.keys(have).filter((o) => (have[o] ?? 0) > 0).sort();
    this.seqs = this.origins.map((o) => have[o] as number);
    this.prefix = [[0, 0, 0, 0]];
    let acc: Words = [0, 0, 0, 0];
    for (const [i, origin] of this.origins.entries()) {
      const w = itemWords(origin, this.seqs[i] as number);
      acc = [acc[0] ^ w[0], acc[1] ^ w[1], acc[2] ^ w[2], acc[3] ^ w[3]];
      this.prefix.push(acc);
    }
  }

  get size(): number {
    return this.origins.length;
  }

  /** Index of the first origin >= bound. */
  private lowerBound(bound: string): number {
    if (bound === RANGE_MIN) return 0;
    if (bound === RANGE_MAX) return this.origins.length;
    let lo = 0;
    let hi = this.origins.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.origins[mid] as string) < bound) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Item indexes [from, to) of the range [lo, hi). */
  span(lo: string, hi: string): [number, number] {
    const from = this.lowerBound(lo);
    return [from, Math.max(from, this.lowerBound(hi))];
  }

  fingerprint(from: number, to: number): string {
    const a = this.prefix[from] as Words;
    const b = this.prefix[to] as Words;
    return encode([a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]]);
  }

  items(from: number, to: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = from; i < to; i++) out[this.origins[i] as string] = this.seqs[i] as number;
    return out;
  }

  /** The shortest prefix of item `i`'s origin that sorts above item i-1's: a bound between them, in few bytes. */
  private boundBefore(i: number): string {
    const id = this.origins[i] as string;
    const before = this.origins[i - 1] ?? '';
    for (let k = 1; k < id.length; k++) if (id.slice(0, k) > before) return id.slice(0, k);
    return id;
  }

  seqOf(index: number): number {
    return this.seqs[index] as number;
  }

  /** [lo, hi) with our items [from, to) cut into up to SPLIT_PARTS ranges of about equal counts, each whole or fingerprinted. */
  describe(lo: string, hi: string, from: number, to: number): SumRange[] {
    const n = to - from;
    if (n <= WHOLE_RANGE_ITEMS) return [{ lo, hi, have: this.items(from, to) }];
    const parts = Math.min(SPLIT_PARTS, Math.ceil(n / WHOLE_RANGE_ITEMS));
    const out: SumRange[] = [];
    let partLo = lo;
    let start = from;
    for (let p = 1; p <= parts; p++) {
      const end = p === parts ? to : from + Math.round((n * p) / parts);
      const partHi = p === parts ? hi : this.boundBefore(end);
      out.push(end - start <= WHOLE_RANGE_ITEMS ? { lo: partLo, hi: partHi, have: this.items(start, end) } : { lo: partLo, hi: partHi, fp: this.fingerprint(start, end), n: end - start });
      partLo = partHi;
      start = end;
    }
    return out;
  }
}

/** The opening message: our whole key space, described. */
export function openSum(index: HaveIndex): SumRange[] {
  return index.describe(RANGE_MIN, RANGE_MAX, 0, index.size);
}

export interface SumAnswer {
  /** Ranges to send back (cut into messages by the caller: chunkRanges). */
  reply: SumRange[];
  /** What the peer said it holds, for origins it listed. */
  learned: Record<string, number>;
  /** Ranges both sides hold alike: the peer holds what we hold there. */
  equal: [number, number][];
}

/**
 * Our answer to a peer's ranges. Malformed bounds (lo >= hi, a `have` item
 * outside its range) are skipped and counted by the caller through `bad`.
 */
export function answerSum(index: HaveIndex, ranges: readonly SumRange[]): SumAnswer & { bad: number } {
  const reply: SumRange[] = [];
  const learned: Record<string, number> = {};
  const equal: [number, number][] = [];
  let bad = 0;
  for (const range of ranges) {
    if (range.hi !== RANGE_MAX && range.lo >= range.hi) {
      bad++;
      continue;
    }
    const [from, to] = index.span(range.lo, range.hi);
    if ('eq' in range) {
      // Alike when we asked; if our items there changed since, the peer holds what we held then, which we no longer know.
      if (range.eq === index.fingerprint(from, to)) equal.push([from, to]);
    } else if ('fp' in range) {
      if (range.n === to - from && range.fp === index.fingerprint(from, to)) {
        equal.push([from, to]);
        reply.push({ lo: range.lo, hi: range.hi, eq: range.fp });
      } else {
        reply.push(...index.describe(range.lo, range.hi, from, to));
      }
    } else {
      const inRange = Object.keys(range.have).every((o) => o >= range.lo && (range.hi === RANGE_MAX || o < range.hi));
      if (!inRange) {
        bad++;
        continue;
      }
      Object.assign(learned, range.have);
      if (range.end) continue;
      // What of ours the peer lacks or holds older: all it needs to know of this range.
      const ours: Record<string, number> = {};
      let count = 0;
      for (let i = from; i < to; i++) {
        const origin = index.origins[i] as string;
        if ((range.have[origin] ?? 0) < index.seqOf(i)) {
          ours[origin] = index.seqOf(i);
          count++;
        }
      }
      if (count === 0) {
        // The peer holds all of ours here at least as far: nothing to say (and if it holds no more, the range is alike).
        if (Object.keys(range.have).length === to - from) equal.push([from, to]);
        continue;
      }
      if (count <= MAX_SUM_ITEMS / 4) reply.push({ lo: range.lo, hi: range.hi, have: ours, end: true });
      else reply.push(...index.describe(range.lo, range.hi, from, to)); // too many to list at once: narrow it down first
    }
  }
  return { reply, learned, equal, bad };
}

/** Cuts ranges into messages within MAX_SUM_RANGES and MAX_SUM_ITEMS each. */
export function chunkRanges(ranges: readonly SumRange[]): SumRange[][] {
  const messages: SumRange[][] = [];
  let current: SumRange[] = [];
  let items = 0;
  for (const range of ranges) {
    const n = 'have' in range ? Object.keys(range.have).length : 0;
    if (current.length > 0 && (current.length >= MAX_SUM_RANGES || items + n > MAX_SUM_ITEMS)) {
      messages.push(current);
      current = [];
      items = 0;
    }
    current.push(range);
    items += n;
  }
  if (current.length > 0) messages.push(current);
  return messages;
}
