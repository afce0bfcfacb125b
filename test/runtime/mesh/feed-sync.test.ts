import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { applyBatch, encodeBatch, missingRanges, nextBatch } from '../../../runtime/mesh/feed-sync.js';

function chain(who: NodeIdentity, n: number): FeedEntry[] {
  const out: FeedEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const prev = out.at(-1);
    out.push(signEntry(who, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: 1_000 + seq, c: 0 }, type: 'reading', body: { seq, value: Math.sin(seq) } }));
  }
  return out;
}

describe('feed catch-up', () => {
  let dir: string;
  let ids: Record<'alice' | 'bob' | 'carol', NodeIdentity>;
  let counters: Counters;
  let a: FeedStore;
  let b: FeedStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sync-'));
    ids = {
      alice: (await loadOrCreateIdentity(path.join(dir, 'alice'))).identity,
      bob: (await loadOrCreateIdentity(path.join(dir, 'bob'))).identity,
      carol: (await loadOrCreateIdentity(path.join(dir, 'carol'))).identity,
    };
    counters = new Counters();
    a = new FeedStore({ dir: path.join(dir, 'a'), counters, segmentBytes: 64 * 1024, maxBytesPerOrigin: 1024 * 1024 });
    b = new FeedStore({ dir: path.join(dir, 'b'), counters, segmentBytes: 64 * 1024, maxBytesPerOrigin: 1024 * 1024 });
    await a.open();
    await b.open();
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('computes what the peer lacks, for every origin', () => {
    expect(missingRanges({ x: 5, y: 2, z: 1 }, { x: 5, y: 1 })).toEqual([['y', 2], ['z', 1]]);
  });

  it('converges two diverged stores, sending only the missing entries of every origin', async () => {
    const alice = chain(ids.alice, 50);
    const bob = chain(ids.bob, 10);
    const carol = chain(ids.carol, 15);
    for (const e of [...alice, ...bob]) await a.apply(e);
    for (const e of [...alice.slice(0, 20), ...carol]) await b.apply(e);
    const missingBytes = [...alice.slice(20), ...bob, ...carol].reduce((sum, e) => sum + encodeEntry(e).length, 0);

    let sent = 0;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (;;) {
        const batch = await nextBatch(from, to.have(), 4096);
        if (batch.length === 0) break;
        const wire = encodeBatch(batch);
        sent += wire.length;
        const outcome = await applyBatch(to, wire, counters);
        expect(outcome.applied).toBe(batch.length);
      }
    }
    const expected = { [ids.alice.nodeId]: 50, [ids.bob.nodeId]: 10, [ids.carol.nodeId]: 15 };
    expect(a.have()).toEqual(expected);
    expect(b.have()).toEqual(expected);
    expect(a.head(ids.carol.nodeId)).toEqual(b.head(ids.carol.nodeId));
    // Only newline separators on top of the entries themselves.
    expect(sent / missingBytes).toBeLessThan(1.01);
  });

  it('skips and counts forged or malformed lines, applies the rest, even shuffled', async () => {
    const alice = chain(ids.alice, 4);
    const forged = { ...alice[2], body: '{"value":666}' } as FeedEntry;
    const lines = [encodeEntry(alice[1] as FeedEntry), Buffer.from('garbage'), encodeEntry(forged), encodeEntry(alice[0] as FeedEntry)];
    const outcome = await applyBatch(b, Buffer.from(lines.map((l) => l.toString()).join('\n')), counters);
    expect(outcome).toMatchObject({ applied: 2, rejected: 2 });
    expect(counters.get('feeds.rejected.APIARY_FEED_SIGNATURE_INVALID')).toBe(1);
    expect(counters.get('feeds.rejected.APIARY_FEED_ENTRY_INVALID')).toBe(1);
    expect(b.have()).toEqual({ [ids.alice.nodeId]: 2 });
  });
});
