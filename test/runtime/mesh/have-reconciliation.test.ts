import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { answerSum, chunkRanges, HaveIndex, MAX_SUM_ITEMS, MAX_SUM_RANGES, openSum, type SumRange } from '../../../runtime/mesh/have-reconciliation.js';
import { decodeMeshMessage, encodeMeshMessage } from '../../../runtime/mesh/mesh-protocol.js';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
/** A node-id-shaped origin from a number, spread over the key space as real ids (hashes) are. */
const origin = (i: number) => [...createHash('sha256').update(String(i)).digest().subarray(0, 12)].map((byte) => alphabet[byte % 32]).join('');

function store(n: number, seq = (i: number) => 1 + (i % 5)): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) out[origin(i)] = seq(i);
  return out;
}

/**
 * Runs a reconciliation between a and b over the real wire encoding, a opening.
 * Returns what each learned of the other, the bytes and the messages.
 */
function reconcile(a: Record<string, number>, b: Record<string, number>) {
  const sides = [{ have: a, learned: {} as Record<string, number> }, { have: b, learned: {} as Record<string, number> }];
  let bytes = 0;
  let messages = 0;
  let rounds = 0;
  let inFlight: { to: number; ranges: SumRange[] }[] = chunkRanges(openSum(new HaveIndex(a))).map((ranges) => ({ to: 1, ranges }));
  while (inFlight.length > 0) {
    if (++rounds > 20) throw new Error('does not terminate');
    const next: typeof inFlight = [];
    for (const message of inFlight) {
      const wire = encodeMeshMessage({ t: 'sum', ranges: message.ranges });
      bytes += wire.length;
      messages++;
      const { header } = decodeMeshMessage(wire);
      if (header.t !== 'sum') throw new Error('not a sum');
      const side = sides[message.to] as (typeof sides)[number];
      const index = new HaveIndex(side.have);
      const answer = answerSum(index, header.ranges);
      expect(answer.bad).toBe(0);
      Object.assign(side.learned, answer.learned);
      for (const [from, to] of answer.equal) Object.assign(side.learned, { ...index.items(from, to), ...side.learned });
      for (const ranges of chunkRanges(answer.reply)) next.push({ to: 1 - message.to, ranges });
    }
    inFlight = next;
  }
  return { aLearned: sides[0]?.learned ?? {}, bLearned: sides[1]?.learned ?? {}, bytes, messages, rounds };
}

/** Origins where `mine` lacks or holds older than `theirs`. */
const ahead = (theirs: Record<string, number>, mine: Record<string, number>) =>
  Object.keys(theirs).filter((o) => (theirs[o] ?? 0) > (mine[o] ?? 0)).sort();
const fullHaveBytes = (have: Record<string, number>) => encodeMeshMessage({ t: 'have', have }).length;

describe('range-based reconciliation of have-vectors', () => {
  it('each side learns every origin the other holds further, in bytes that grow with the difference, not the store', () => {
    const bytes: number[] = [];
    for (const n of [1_000, 10_000]) {
      const a = store(n);
      const b = { ...a };
      // Three differences: a holds one origin further, b one further, and b one a has never seen.
      a[origin(7)] = (a[origin(7)] ?? 0) + 3;
      b[origin(n - 2)] = (b[origin(n - 2)] ?? 0) + 1;
      b[origin(n + 5)] = 4;
      const run = reconcile(a, b);
      expect(ahead(a, b)).toEqual([origin(7)]);
      expect(run.bLearned[origin(7)]).toBe(a[origin(7)]);
      expect(ahead(b, a)).toEqual([origin(n - 2), origin(n + 5)].sort());
      expect(ahead(b, a).every((o) => run.aLearned[o] === b[o])).toBe(true);
      expect(run.rounds).toBeLessThanOrEqual(6);
      bytes.push(run.bytes);
      // A few KiB, where a full have-vector is 17 KB at 1,000 origins and 170 KB at 10,000.
      expect(run.bytes).toBeLessThan(fullHaveBytes(a) / 3);
    }
    // Ten times the origins, the same three differences: one more level of ranges, not ten times the bytes.
    expect((bytes[1] ?? 0) / (bytes[0] ?? 1)).toBeLessThan(2);
  });

  it('two alike stores: one message each way, and each knows the other holds all it holds', () => {
    const a = store(5_000);
    const run = reconcile(a, { ...a });
    expect(run.messages).toBe(2);
    expect(Object.keys(run.bLearned).length).toBe(5_000);
    expect(Object.keys(run.aLearned).length).toBe(5_000);
  });

  it('an answer "alike" teaches the asker only the ranges its items have not moved in since it asked', () => {
    const a = store(2_000);
    const opening = openSum(new HaveIndex(a));
    const answer = answerSum(new HaveIndex({ ...a }), opening);
    expect(answer.reply.every((r) => 'eq' in r)).toBe(true);
    // Meanwhile an entry of one origin reached a: b holds the older seq, which a no longer knows.
    const moved = origin(42);
    const later = { ...a, [moved]: (a[moved] ?? 0) + 1 };
    const index = new HaveIndex(later);
    const back = answerSum(index, answer.reply);
    const taught = back.equal.flatMap(([from, to]) => Object.keys(index.items(from, to)));
    expect(taught).not.toContain(moved);
    expect(taught.length).toBeGreaterThan(1_800);
    expect(back.reply).toEqual([]);
  });

  it('an empty node and a full one: everything is learned, each message within the limits', () => {
    const a = store(3_000);
    const run = reconcile({}, a);
    expect(ahead(a, {}).every((o) => run.aLearned[o] === a[o])).toBe(true);
    for (const ranges of chunkRanges(answerSum(new HaveIndex(a), [{ lo: '', hi: '~', have: {} }]).reply)) {
      expect(ranges.length).toBeLessThanOrEqual(MAX_SUM_RANGES);
      expect(ranges.reduce((sum, r) => sum + ('have' in r ? Object.keys(r.have).length : 0), 0)).toBeLessThanOrEqual(MAX_SUM_ITEMS);
    }
  });

  it('refuses malformed ranges: inverted bounds and items outside their range, counted, not learned', () => {
    const index = new HaveIndex(store(100));
    const answer = answerSum(index, [
      { lo: 'zzzzzzzzzzzz', hi: 'aaaaaaaaaaaa', fp: 'A'.repeat(16), n: 3 },
      { lo: 'bbbbbbbbbbbb', hi: 'cccccccccccc', have: { zzzzzzzzzzzz: 5 } },
    ]);
    expect(answer.bad).toBe(2);
    expect(answer.learned).toEqual({});
    expect(answer.reply).toEqual([]);
    // And on the wire: a sum with too many ranges or a bound that is not an id is refused whole.
    const tooMany = Array.from({ length: MAX_SUM_RANGES + 1 }, () => ({ lo: '', hi: '~', eq: 'A'.repeat(16) }));
    expect(() => decodeMeshMessage(Buffer.from(JSON.stringify({ t: 'sum', ranges: tooMany })))).toThrow();
    expect(() => decodeMeshMessage(Buffer.from(JSON.stringify({ t: 'sum', ranges: [{ lo: 'X', hi: '~', eq: 'A'.repeat(16) }] })))).toThrow();
  });
});
