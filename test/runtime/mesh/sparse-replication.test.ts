/**
 * Sparse replication, in parts (issue 16): the keep rules, the relay cache,
 * and a feed store that keeps only what the rules say on real files while
 * still checking and chaining every entry. The three-node test is
 * mesh-sparse.test.ts.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../runtime/config/schema.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { decodeMeshMessage, MAX_SPARSE_ORIGINS } from '../../../runtime/mesh/mesh-protocol.js';
import { RelayCache } from '../../../runtime/mesh/relay-cache.js';
import { KeepRules, PeerSparseOrigins, typeMatches, type KeepRule } from '../../../runtime/mesh/sparse-replication.js';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

/** A chain of entries of `who`'s feed with these types, `hlc` ms apart ending at `end`. */
function chain(who: NodeIdentity, types: readonly string[], from: FeedEntry | undefined = undefined, hlc = (seq: number) => NOW - 1_000 + seq): FeedEntry[] {
  const out: FeedEntry[] = [];
  for (const type of types) {
    const prev = out.at(-1) ?? from;
    const seq = (prev?.seq ?? 0) + 1;
    out.push(signEntry(who, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: hlc(seq), c: 0 }, type, body: { seq, pad: 'x'.repeat(100) } }));
  }
  return out;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('keep rules', () => {
  const owners: Record<string, string> = { aaaaaaaaaaaa: 'OWNER_A', bbbbbbbbbbbb: 'OWNER_B' };
  const rules = (list: KeepRule[] | undefined) => new KeepRules(list, 'ssssssssssss', (origin) => owners[origin]);
  const entry = (origin: string, type: string, ageMs = 0) => ({ origin, type, hlc: { l: NOW - ageMs, c: 0 } }) as FeedEntry;

  it('keeps everything without rules, and this node\'s own entries, revocations and entries sealed for it whatever they say', () => {
    expect(rules(undefined).keeps(entry('aaaaaaaaaaaa', 'reading'), NOW)).toBe(true);
    expect(rules(undefined).holdsWhole('aaaaaaaaaaaa')).toBe(true);
    const none = rules([]);
    expect(none.keeps(entry('aaaaaaaaaaaa', 'reading'), NOW)).toBe(false);
    expect(none.keeps(entry('ssssssssssss', 'reading'), NOW)).toBe(true);
    expect(none.keeps(entry('aaaaaaaaaaaa', 'revocation'), NOW)).toBe(true);
    expect(none.holdsWhole('ssssssssssss')).toBe(true);
    const sealed = (recipients: string[]) => ({ ...entry('aaaaaaaaaaaa', 'private'), body: JSON.stringify({ v: 2, recipients: Object.fromEntries(recipients.map((r) => [r, {}])) }) }) as FeedEntry;
    expect(none.keeps(sealed(['aaaaaaaaaaaa', 'ssssssssssss']), NOW)).toBe(true);
    expect(none.keeps(sealed(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']), NOW)).toBe(false);
    expect(none.holdsWhole('aaaaaaaaaaaa')).toBe(false);
  });

  it('matches by origin, owner, type (exact or a prefix with *) and age, any rule sufficing', () => {
    const r = rules([
      { origins: ['aaaaaaaaaaaa'], types: ['alert*'] },
      { owners: ['OWNER_B'], types: ['model-release'], maxAge: 7 * DAY },
    ]);
    expect(r.keeps(entry('aaaaaaaaaaaa', 'alert'), NOW)).toBe(true);
    expect(r.keeps(entry('aaaaaaaaaaaa', 'alert.swarm'), NOW)).toBe(true);
    expect(r.keeps(entry('aaaaaaaaaaaa', 'reading'), NOW)).toBe(false);
    expect(r.keeps(entry('aaaaaaaaaaaa', 'model-release'), NOW)).toBe(false); // owner A, not B
    expect(r.keeps(entry('bbbbbbbbbbbb', 'alert'), NOW)).toBe(false);
    expect(r.keeps(entry('bbbbbbbbbbbb', 'model-release', 6 * DAY), NOW)).toBe(true);
    expect(r.keeps(entry('bbbbbbbbbbbb', 'model-release', 8 * DAY), NOW)).toBe(false);
    expect(r.keeps(entry('cccccccccccc', 'model-release'), NOW)).toBe(false); // owner unknown: no owner rule matches
    expect(r.holdsWhole('aaaaaaaaaaaa')).toBe(false);
    expect(rules([{ owners: ['OWNER_A'] }]).holdsWhole('aaaaaaaaaaaa')).toBe(true);
    expect(rules([{ owners: ['OWNER_A'], maxAge: DAY }]).holdsWhole('aaaaaaaaaaaa')).toBe(false);
  });

  it('a type pattern matches exactly, or by prefix only with a trailing *', () => {
    expect(typeMatches('alert', 'alert')).toBe(true);
    expect(typeMatches('alert', 'alerts')).toBe(false);
    expect(typeMatches('alert*', 'alerts')).toBe(true);
    expect(typeMatches('alert*', 'an-alert')).toBe(false);
  });

  it('the config: validated, frozen, and each bad rule named with its fix', () => {
    const config = parseConfig({ mesh: { replicate: [{ origins: ['aaaaaaaaaaaa'], types: ['alert*'], maxAge: '7d' }], relay: { maxBytes: '1MiB' } } });
    expect(config.mesh.replicate).toEqual([{ origins: ['aaaaaaaaaaaa'], types: ['alert*'], maxAge: 7 * DAY }]);
    expect(config.mesh.relay.maxBytes).toBe(1024 ** 2);
    expect(Object.isFrozen(config.mesh.replicate?.[0])).toBe(true);
    expect(configSchema.parse({}).mesh.replicate).toBeUndefined();
    expect(configSchema.parse({}).mesh.relay.maxBytes).toBe(4 * 1024 ** 2);
    const bad = (mesh: unknown) => {
      try {
        parseConfig({ mesh });
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ replicate: [{}] })).toMatch(/"mesh\.replicate\.0".*a rule with no field keeps everything.*leave mesh\.replicate out/);
    expect(bad({ replicate: [{ types: ['Alert'] }] })).toMatch(/"mesh\.replicate\.0\.types\.0".*like "alert" or a prefix like "alert\*"/);
    expect(bad({ replicate: [{ types: ['al*ert'] }] })).toMatch(/mesh\.replicate\.0\.types\.0/);
    expect(bad({ replicate: [{ origins: ['hive-1'] }] })).toMatch(/"mesh\.replicate\.0\.origins\.0".*12-character node id/);
    expect(bad({ replicate: [{ owners: ['ana'] }] })).toMatch(/"mesh\.replicate\.0\.owners\.0".*owner key/);
    expect(bad({ replicate: [{ types: ['alert'], maxAge: 'soon' }] })).toMatch(/"mesh\.replicate\.0\.maxAge".*duration/);
    expect(bad({ replicate: [{ type: ['alert'] }] })).toMatch(/unknown field "type"/);
    expect(bad({ relay: { maxBytes: '1KiB' } })).toMatch(/"mesh\.relay\.maxBytes".*size between 64\.0 KiB/);
  });

  it('a peer\'s `sparse` message is checked with its bound', () => {
    const message = (origins: string[]) => Buffer.from(JSON.stringify({ t: 'sparse', origins }));
    expect(decodeMeshMessage(message(['aaaaaaaaaaaa'])).header).toEqual({ t: 'sparse', origins: ['aaaaaaaaaaaa'] });
    expect(() => decodeMeshMessage(message(Array.from({ length: MAX_SPARSE_ORIGINS + 1 }, () => 'aaaaaaaaaaaa')))).toThrow(/origins/);
    expect(() => decodeMeshMessage(message(['not-a-node']))).toThrow(/origins/);
    expect(() => decodeMeshMessage(Buffer.from(JSON.stringify({ t: 'sparse', origins: [], extra: 1 })))).toThrow(/malformed/);
  });

  it('remembers which origins each peer holds sparsely, what it said last', () => {
    const peers = new PeerSparseOrigins();
    peers.note('pppppppppppp', ['aaaaaaaaaaaa']);
    expect(peers.has('pppppppppppp', 'aaaaaaaaaaaa')).toBe(true);
    expect(peers.has('qqqqqqqqqqqq', 'aaaaaaaaaaaa')).toBe(false);
    peers.note('pppppppppppp', ['bbbbbbbbbbbb']);
    expect(peers.has('pppppppppppp', 'aaaaaaaaaaaa')).toBe(false);
    peers.note('pppppppppppp', []);
    expect(peers.has('pppppppppppp', 'bbbbbbbbbbbb')).toBe(false);
  });
});

describe('relay cache', () => {
  it('holds at most maxBytes, drops the oldest first and counts each drop', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-relay-'));
    try {
      const who = (await loadOrCreateIdentity(dir)).identity;
      const counters = new Counters();
      const entries = chain(who, Array.from({ length: 20 }, () => 'reading'));
      const size = encodeEntry(entries[19] as FeedEntry).length; // seqs 10-20: all one size
      const cache = new RelayCache({ maxBytes: size * 5 + 3, counters });
      for (const e of entries) {
        cache.add(e, encodeEntry(e).length);
        expect(cache.status().bytes).toBeLessThanOrEqual(size * 5 + 3);
      }
      expect(cache.status().entries).toBe(5);
      expect(counters.snapshot()['mesh.relay.dropped']).toBe(15);
      expect(cache.from(who.nodeId, 1).map((e) => e.seq)).toEqual([16, 17, 18, 19, 20]);
      expect(cache.from(who.nodeId, 18).map((e) => e.seq)).toEqual([18, 19, 20]);
      expect(cache.get(who.nodeId, 15)).toBeUndefined();
      expect(cache.get(who.nodeId, 20)?.seq).toBe(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a feed store with keep rules', () => {
  let dir: string;
  let alice: NodeIdentity;
  let counters: Counters;
  let relay: RelayCache;
  let store: FeedStore;
  let rules: KeepRules;
  const make = () => {
    relay = new RelayCache({ maxBytes: 64 * 1024, counters });
    return new FeedStore({
      dir: path.join(dir, 'feeds'), counters, segmentBytes: 1024, maxBytesPerOrigin: 1024 * 1024,
      replication: rules, sparse: { dir: path.join(dir, 'sparse'), relay },
    });
  };
  const types = ['reading', 'alert', 'reading', 'reading', 'alert.swarm', 'reading', 'reading', 'alert', 'reading', 'reading'];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sparse-'));
    alice = (await loadOrCreateIdentity(path.join(dir, 'alice'))).identity;
    counters = new Counters();
    rules = new KeepRules([{ origins: [alice.nodeId], types: ['alert*'] }], 'ssssssssssss', () => undefined);
    store = make();
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('checks and chains every entry, writes only the kept ones, and serves peers an unbroken run', async () => {
    const entries = chain(alice, types);
    for (const e of entries) expect(await store.apply(e)).toBe('applied');
    expect(store.head(alice.nodeId)).toEqual({ seq: 10, hash: entryHash(entries[9] as FeedEntry) });
    expect(store.have()).toEqual({ [alice.nodeId]: 10 });
    expect(store.sparseOrigins()).toEqual([alice.nodeId]);
    expect((await collect(store.read(alice.nodeId))).map((e) => e.seq)).toEqual([2, 5, 8]);
    expect((await collect(store.read(alice.nodeId, 3))).map((e) => e.seq)).toEqual([5, 8]);
    expect(counters.snapshot()['feeds.sparse.kept']).toBe(3);
    expect(counters.snapshot()['feeds.sparse.relayed']).toBe(7);
    // Kept and relayed together: every entry, in order.
    expect((await collect(store.forPeers().read(alice.nodeId, 1))).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Not the full feed on disk: no positional log for alice.
    expect(await readdir(path.join(dir, 'feeds')).catch(() => [])).toEqual([]);
    // A re-sent entry is a duplicate; a different one for a held seq is a fork.
    expect(await store.apply(entries[3] as FeedEntry)).toBe('duplicate');
    const other = chain(alice, ['reading', 'reading', 'reading', 'reading'])[3] as FeedEntry;
    expect(await store.apply(other)).toBe('fork');
    const stats = store.stats().find((s) => s.origin === alice.nodeId);
    expect(stats).toMatchObject({ sparse: true, kept: 3, seq: 10, firstSeq: 2 });
  });

  it('serves peers only up to the first entry held neither kept nor relayed', async () => {
    const entries = chain(alice, types);
    for (const e of entries) await store.apply(e);
    relay.clear(); // as if every relayed entry had been dropped
    expect((await collect(store.forPeers().read(alice.nodeId, 1))).map((e) => e.seq)).toEqual([2]);
    expect((await collect(store.forPeers().read(alice.nodeId, 3))).map((e) => e.seq)).toEqual([5]);
    expect((await collect(store.forPeers().read(alice.nodeId, 9))).map((e) => e.seq)).toEqual([]);
  });

  it('keeps its place in the chain across a restart, and after one without close (the heads file behind)', async () => {
    const entries = chain(alice, types);
    for (const e of entries) await store.apply(e);
    await store.close();
    store = make();
    await store.open();
    expect(store.head(alice.nodeId).seq).toBe(10);
    const more = chain(alice, ['reading', 'alert'], entries[9]);
    for (const e of more) expect(await store.apply(e)).toBe('applied');
    expect((await collect(store.read(alice.nodeId))).map((e) => e.seq)).toEqual([2, 5, 8, 12]);
    // Now a crash: a second store on the same files before this one wrote its heads (written at most every 10 s).
    const later = chain(alice, ['reading', 'reading'], more[1]);
    for (const e of later) await store.apply(e);
    const crashed = make();
    await crashed.open();
    // Its head is at least the last kept entry, and what came after it applies again, chained to it.
    expect(crashed.head(alice.nodeId).seq).toBeGreaterThanOrEqual(12);
    for (const e of later) expect(['applied', 'duplicate']).toContain(await crashed.apply(e));
    expect(crashed.head(alice.nodeId).seq).toBe(14);
    await crashed.close();
  });

  it('drops kept entries past their rule\'s maxAge at retention time, counted', async () => {
    rules = new KeepRules([{ origins: [alice.nodeId], types: ['alert*'], maxAge: DAY }], 'ssssssssssss', () => undefined);
    await store.close();
    store = make();
    await store.open();
    const now = Date.now();
    // Old alerts (two days), then fresh ones: the old ones fill sealed segments (1 KiB each).
    const old = chain(alice, Array.from({ length: 12 }, () => 'alert'), undefined, () => now - 2 * DAY);
    // Received already past maxAge: not kept, relayed only.
    for (const e of old) await store.apply(e);
    expect(counters.snapshot()['feeds.sparse.kept'] ?? 0).toBe(0);
    rules = new KeepRules([{ origins: [alice.nodeId], types: ['alert*'], maxAge: 3 * DAY }], 'ssssssssssss', () => undefined);
    await store.close();
    store = make();
    await store.open();
    const older = chain(alice, Array.from({ length: 12 }, () => 'alert'), old[11], () => now - 2 * DAY);
    for (const e of older) await store.apply(e);
    const fresh = chain(alice, ['alert', 'alert'], older[11], () => now);
    for (const e of fresh) await store.apply(e);
    expect(counters.snapshot()['feeds.sparse.kept']).toBe(14);
    // The rules tighten to one day: the two-day-old alerts are no longer read, and their sealed segments go.
    rules = new KeepRules([{ origins: [alice.nodeId], types: ['alert*'], maxAge: DAY }], 'ssssssssssss', () => undefined);
    await store.close();
    store = make();
    await store.open();
    expect((await collect(store.read(alice.nodeId))).map((e) => e.seq)).toEqual([25, 26]);
    await store.prune();
    expect(counters.snapshot()['feeds.sparse.expired']).toBeGreaterThan(0);
    expect(store.head(alice.nodeId).seq).toBe(26);
  });
});
