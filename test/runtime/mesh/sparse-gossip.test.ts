/**
 * The gossip's side of sparse replication (issue 16), on a real feed store
 * with the links replaced by a recorder: a node asks a peer that holds an
 * origin whole before one that holds it sparsely, continues a feed past a
 * gap only when no other linked holder could fill it, and does not ask a
 * sparse peer again for what it said it does not hold.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedGossip } from '../../../runtime/mesh/feed-gossip.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import type { MeshHeader } from '../../../runtime/mesh/mesh-protocol.js';

const SPARSE = 'ssssssssssss';
const FULL = 'ffffffffffff';

function chain(who: NodeIdentity, n: number): FeedEntry[] {
  const out: FeedEntry[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const prev = out.at(-1);
    out.push(signEntry(who, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: 1_000 + seq, c: 0 }, type: 'reading', body: { seq } }));
  }
  return out;
}

describe('gossip with sparse peers', () => {
  let dir: string;
  let origin: NodeIdentity;
  let entries: FeedEntry[];
  let store: FeedStore;
  let counters: Counters;
  let sent: { peer: string; header: MeshHeader }[];
  let gossip: FeedGossip;

  async function setUp(links: readonly string[], wantTimeoutMs = 5_000): Promise<void> {
    store = new FeedStore({ dir: path.join(dir, 'feeds'), counters, segmentBytes: 64 * 1024, maxBytesPerOrigin: 1024 * 1024 });
    await store.open();
    for (const e of entries.slice(0, 3)) await store.apply(e);
    gossip = new FeedGossip({
      self: 'bbbbbbbbbbbb', store: store.forPeers(), counters,
      settings: { maxHops: 8, commitIntervalMs: 20, batchBytes: 256 * 1024, antiEntropyMs: 1_000, wantTimeoutMs, wantsPerSecond: 100, wantBurst: 100 },
      scheduler: { now: () => Date.now(), after: () => () => undefined },
      trust: { known: () => true, refusal: () => undefined, quarantined: () => false, learn: () => undefined, certificate: () => undefined },
      send: (peer, header) => {
        sent.push({ peer, header });
        return true;
      },
      links: () => links.map((id) => [id, true] as const),
      isUp: (peer) => links.includes(peer),
      applied: () => undefined,
      haveMessage: () => ({ t: 'have', have: store.have() }),
      sparseAt: (peer) => peer === SPARSE,
    });
    for (const id of links) gossip.linked(id);
  }
  const wantsTo = (peer: string) => sent.filter((m) => m.peer === peer && m.header.t === 'want').map((m) => (m.header as Extract<MeshHeader, { t: 'want' }>).want);
  /** `from` answers a want with entries from `first` on, saying the earlier ones are gone there. */
  const answer = (from: string, first: number) => gossip.onEntries(from, { t: 'entries', hops: 0, reply: true, certs: [], starts: first > 4 ? { [origin.nodeId]: first } : {} },
    entries.slice(first - 1).map(encodeEntry));

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sparse-gossip-'));
    origin = (await loadOrCreateIdentity(path.join(dir, 'origin'))).identity;
    entries = chain(origin, 10);
    counters = new Counters();
    sent = [];
  });
  afterEach(async () => {
    gossip.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('asks the peer that holds the origin whole, not the sparse one, and does not skip what that one holds', async () => {
    // No want timeout: a want in flight to one peer does not itself keep the node from asking another.
    await setUp([SPARSE, FULL], 0);
    gossip.onHello(FULL, { [origin.nodeId]: 10 });
    expect(wantsTo(FULL)).toEqual([{ [origin.nodeId]: 4 }]);
    gossip.onHello(SPARSE, { [origin.nodeId]: 10 });
    expect(wantsTo(SPARSE)).toEqual([]);
    // The sparse peer's late answer (it holds 8 on) does not make the node skip 4-7: the full holder has them.
    await answer(SPARSE, 8);
    expect(store.head(origin.nodeId).seq).toBe(3);
    expect(counters.snapshot()['feeds.resumed_skipped']).toBeUndefined();
    await answer(FULL, 4);
    expect(store.head(origin.nodeId).seq).toBe(10);
  });

  it('continues past a gap that no linked peer can fill, counted', async () => {
    await setUp([SPARSE]);
    gossip.onHello(SPARSE, { [origin.nodeId]: 10 });
    expect(wantsTo(SPARSE)).toEqual([{ [origin.nodeId]: 4 }]);
    await answer(SPARSE, 8);
    expect(store.head(origin.nodeId).seq).toBe(10);
    expect(counters.snapshot()['feeds.resumed_skipped']).toBe(4);
    expect(counters.snapshot()['mesh.unrecoverable_gaps']).toBeGreaterThan(0);
    const held: number[] = [];
    for await (const e of store.read(origin.nodeId)) held.push(e.seq);
    expect(held).toEqual([1, 2, 3, 8, 9, 10]);
  });

  it('does not ask a sparse peer again for what it said it holds nothing of, until what it holds moves', async () => {
    await setUp([SPARSE]);
    gossip.onHello(SPARSE, { [origin.nodeId]: 10 });
    const id = (sent.find((m) => m.header.t === 'want')?.header as Extract<MeshHeader, { t: 'want' }>).id as number;
    gossip.onHave(SPARSE, { t: 'have', have: { [origin.nodeId]: 10 }, answers: id });
    gossip.onHave(SPARSE, { t: 'have', have: { [origin.nodeId]: 10 }, answers: id });
    expect(wantsTo(SPARSE)).toHaveLength(1);
    // It holds more now: asked again.
    gossip.onHave(SPARSE, { t: 'have', have: { [origin.nodeId]: 11 }, answers: id });
    expect(wantsTo(SPARSE)).toHaveLength(2);
  });
});
