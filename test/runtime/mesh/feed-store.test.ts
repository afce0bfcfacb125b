import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { decodeLines } from '../../../runtime/mesh/feed-sync.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';

/** A chain of `n` entries of `who`'s feed. */
function chain(who: NodeIdentity, n: number, tag = 'a'): FeedEntry[] {
  const out: FeedEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const prev = out.at(-1);
    out.push(signEntry(who, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: 1_000 + seq, c: 0 }, type: 'reading', body: { seq, tag } }));
  }
  return out;
}

describe('FeedStore', () => {
  let dir: string;
  let alice: NodeIdentity;
  let bob: NodeIdentity;
  let counters: Counters;
  let store: FeedStore;
  const make = () => new FeedStore({ dir: path.join(dir, 'feeds'), counters, segmentBytes: 4096, maxBytesPerOrigin: 1024 * 1024 });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-feeds-'));
    alice = (await loadOrCreateIdentity(path.join(dir, 'alice'))).identity;
    bob = (await loadOrCreateIdentity(path.join(dir, 'bob'))).identity;
    counters = new Counters();
    store = make();
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies each entry exactly once, in order, for every origin', async () => {
    const a = chain(alice, 5);
    const b = chain(bob, 3);
    for (const e of [...a, ...b]) expect(await store.apply(e)).toBe('applied');
    for (const e of [a[1], a[4], b[0]]) expect(await store.apply(e as FeedEntry)).toBe('duplicate');
    expect(store.have()).toEqual({ [alice.nodeId]: 5, [bob.nodeId]: 3 });
    const read: number[] = [];
    for await (const e of store.read(alice.nodeId, 3)) read.push(e.seq);
    expect(read).toEqual([3, 4, 5]);
    expect(counters.get('feeds.applied')).toBe(8);
    expect(counters.get('feeds.duplicate')).toBe(3);
  });

  it('refuses an entry that arrives before the ones it follows (a gap), without queueing it', async () => {
    const a = chain(alice, 3);
    expect(await store.apply(a[2] as FeedEntry)).toBe('gap');
    expect(store.head(alice.nodeId).seq).toBe(0);
    expect(await store.apply(a[0] as FeedEntry)).toBe('applied');
    expect(await store.apply(a[1] as FeedEntry)).toBe('applied');
    expect(await store.apply(a[2] as FeedEntry)).toBe('applied');
  });

  it('catches a fork: a second history signed by the same origin', async () => {
    const honest = chain(alice, 3, 'honest');
    const other = chain(alice, 3, 'other');
    for (const e of honest) await store.apply(e);
    expect(await store.apply(other[1] as FeedEntry)).toBe('fork'); // same seq, different entry
    const next = signEntry(alice, { seq: 4, prev: entryHash(other[2] as FeedEntry), hlc: { l: 9_999, c: 0 }, type: 'reading', body: {} });
    expect(await store.apply(next)).toBe('fork'); // chains to the other history
    expect(counters.get('feeds.fork')).toBe(2);
  });

  it('remembers the hashes of the latest entries, so repeats need no signature check, and a fork at a recent seq still does', async () => {
    const honest = chain(alice, 3, 'honest');
    const other = chain(alice, 3, 'other');
    for (const e of honest) await store.apply(e);
    expect(store.recentHash(alice.nodeId, 2)).toBe(entryHash(honest[1] as FeedEntry));
    expect(store.recentHash(alice.nodeId, 2)).not.toBe(entryHash(other[1] as FeedEntry));
    expect(store.recentHash(alice.nodeId, 4)).toBeUndefined();
    // A line that repeats a held entry is skipped before verification; any other line is verified (and a bad one refused).
    const forged = { ...(honest[1] as FeedEntry), body: '{"forged":true}' };
    const held = (e: FeedEntry) => store.recentHash(e.origin, e.seq) === entryHash(e);
    const decoded = decodeLines([encodeEntry(honest[1] as FeedEntry), encodeEntry(forged), encodeEntry(other[1] as FeedEntry)], counters, undefined, held);
    expect(decoded).toEqual([other[1]]);
    expect(counters.get('feeds.rejected.APIARY_FEED_SIGNATURE_INVALID')).toBe(1);
    expect(await store.apply(decoded[0] as FeedEntry)).toBe('fork');
  });

  it('keeps concurrent applies of one feed in order', async () => {
    const a = chain(alice, 20);
    const results = await Promise.all(a.map((e) => store.apply(e)));
    expect(results.every((r) => r === 'applied')).toBe(true);
    expect(store.head(alice.nodeId)).toEqual({ seq: 20, hash: entryHash(a[19] as FeedEntry) });
  });

  it('recovers every feed head from disk after a restart', async () => {
    const a = chain(alice, 40); // several 4 KiB segments
    for (const e of a) await store.apply(e);
    await store.close();
    store = make();
    await store.open();
    expect(store.have()).toEqual({ [alice.nodeId]: 40 });
    expect(await store.apply(a[39] as FeedEntry)).toBe('duplicate');
    const next = signEntry(alice, { seq: 41, prev: entryHash(a[39] as FeedEntry), hlc: { l: 5_000, c: 0 }, type: 'reading', body: {} });
    expect(await store.apply(next)).toBe('applied');
  });
});
