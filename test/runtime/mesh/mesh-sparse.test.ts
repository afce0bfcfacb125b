/**
 * Sparse replication on real nodes (issue 16): three nodes of three owners in
 * a line, A - S - B, each link through a TCP proxy, so B hears of A only
 * through S. S keeps only A's alerts (mesh.replicate); everything else it
 * checks, chains and passes on from its relay cache (mesh.relay.maxBytes).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity } from '../../../runtime/identity/identity.js';
import { parseEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { SegmentLog } from '../../../runtime/storage/segment-log.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

const RELAY_BYTES = 64 * 1024;

describe('sparse replication on three nodes in a line', () => {
  let dir: string;
  let a: TestMeshNode;
  let s: TestMeshNode;
  let b: TestMeshNode;
  let owners: string[];
  let sMesh: Parameters<typeof startMeshNode>[0]['mesh'];
  const proxies = new Map<string, TcpProxy>();
  const live = new Set<TestMeshNode>();
  const counter = (n: TestMeshNode, name: string) => n.counters.snapshot()[name] ?? 0;
  const describeAll = () => JSON.stringify([...live].map((n) => ({
    name: n.name, heads: [a, s, b].map((o) => n.mesh.store.head(o.node.nodeId).seq), replication: n.mesh.status().replication,
    counters: Object.fromEntries(Object.entries(n.counters.snapshot()).filter(([k]) => /sparse|relay|gap|fork|unrecoverable|sent\.want|received\.have/.test(k))),
  })));
  const seqOf = (n: TestMeshNode, origin: TestMeshNode) => n.mesh.store.head(origin.node.nodeId).seq;
  const caughtUp = (n: TestMeshNode, origin: TestMeshNode) => waitFor(() => seqOf(n, origin) === seqOf(origin, origin), 20_000, describeAll);
  async function all(items: AsyncIterable<FeedEntry>): Promise<FeedEntry[]> {
    const out: FeedEntry[] = [];
    for await (const item of items) out.push(item);
    return out;
  }
  /** Links `from` to `to` through a proxy (kept by name, to cut and heal). */
  async function link(from: TestMeshNode, to: TestMeshNode): Promise<void> {
    const key = `${from.name}-${to.name}`;
    let proxy = proxies.get(key);
    if (!proxy) {
      proxy = new TcpProxy(to.broker.port);
      await proxy.start();
      proxies.set(key, proxy);
    }
    from.mesh.link(proxy.url, to.node.nodeId);
  }
  const linked = () => waitFor(() => a.mesh.linkedPeers().length === 1 && s.mesh.linkedPeers().length === 2 && b.mesh.linkedPeers().length === 1, 30_000, describeAll);
  const startS = (port?: number) => startMeshNode({ name: 's', dir: path.join(dir, 's'), trustedOwners: owners, mesh: sMesh, ...(port ? { port } : {}) });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sparse-'));
    const dirs = ['a', 's', 'b'].map((n) => path.join(dir, n));
    owners = await Promise.all(dirs.map(ownerKeyOf));
    const aId = (await loadOrCreateIdentity(dirs[0] as string)).identity.nodeId;
    const common = { acceptRelayedPlainLinks: true, dialBack: false, antiEntropyInterval: '1s', commitInterval: '20ms', graftTimeout: '1s' } as const;
    sMesh = { ...common, replicate: [{ origins: [aId], types: ['alert*'] }], relay: { maxBytes: RELAY_BYTES } };
    [a, s, b] = await Promise.all([
      startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners, mesh: common }),
      startS(),
      startMeshNode({ name: 'b', dir: dirs[2] as string, trustedOwners: owners, mesh: common }),
    ]);
    for (const n of [a, s, b]) live.add(n);
    await link(a, s);
    await link(s, a);
    await link(s, b);
    await link(b, s);
    await linked();
  }, 60_000);
  afterAll(async () => {
    await Promise.all([...live].map((n) => n.stop()));
    await Promise.all([...proxies.values()].map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('S keeps exactly A\'s alerts (and its own entries) on disk, and B still receives every entry of A through S', async () => {
    const types = ['reading', 'reading', 'alert', 'reading', 'alert.swarm', 'reading', 'reading', 'reading', 'alert', 'reading'];
    for (const [i, type] of types.entries()) await a.mesh.append(type, { i, pad: 'x'.repeat(200) });
    await s.mesh.append('note', { mine: true });
    await b.mesh.append('reading', { from: 'b' });
    await caughtUp(b, a);
    await caughtUp(a, s);
    await caughtUp(a, b);
    // B: all of A's feed, whole, in order (it went through S).
    expect((await all(b.mesh.store.read(a.node.nodeId))).map((e) => e.type)).toEqual(types);
    // S: A's alerts only; B's reading passed on, not kept; its own entries whole.
    expect((await all(s.mesh.store.read(a.node.nodeId))).map((e) => e.type)).toEqual(['alert', 'alert.swarm', 'alert']);
    expect(await all(s.mesh.store.read(b.node.nodeId))).toEqual([]);
    expect((await all(s.mesh.store.read(s.node.nodeId))).map((e) => e.type)).toEqual(['note']);
    expect(seqOf(s, a)).toBe(types.length);
    const status = s.mesh.status().replication as { kept: number; relayed: number; sparseOrigins: string[]; rules: unknown };
    expect(status).toMatchObject({ kept: 3, relayed: 8, rules: [{ origins: [a.node.nodeId], types: ['alert*'] }] });
    expect(status.sparseOrigins.sort()).toEqual([a.node.nodeId, b.node.nodeId].sort());
    const feeds = s.mesh.status().feeds as { origin: string; seq: number; sparse?: true; kept?: number }[];
    expect(feeds.find((f) => f.origin === a.node.nodeId)).toMatchObject({ sparse: true, kept: 3, seq: types.length });
    expect(feeds.find((f) => f.origin === b.node.nodeId)).toMatchObject({ sparse: true, kept: 0, seq: 1 });
    // B and A were told (a `sparse` message: an empty list at link-up, then the list once it changed) that S holds A and B
    // sparsely, and still ask it: no one else holds them.
    await waitFor(() => counter(b, 'mesh.received.sparse') >= 2 && counter(a, 'mesh.received.sparse') >= 2, 10_000, describeAll);
    expect(counter(b, 'mesh.unrecoverable_gaps') + counter(a, 'mesh.unrecoverable_gaps')).toBe(0);
  }, 60_000);

  it('S restarted keeps its place in A\'s chain: new entries still apply, and its files hold exactly A\'s alerts', async () => {
    const port = s.broker.port;
    const before = seqOf(s, a);
    live.delete(s);
    await s.stop();
    // On disk: the feed dir holds S's own feed only; A's alerts are in a sparse log of their own.
    expect(await readdir(path.join(dir, 's', 'mesh', 'feeds'))).toEqual([s.node.nodeId]);
    const log = new SegmentLog({ dir: path.join(dir, 's', 'mesh', 'sparse', a.node.nodeId), name: 'check', segmentBytes: 1 << 20, maxBytes: 1 << 30, counters: new Counters() });
    await log.open();
    const onDisk: FeedEntry[] = [];
    for await (const record of log.read()) onDisk.push(parseEntry(record.payload));
    await log.close();
    expect(onDisk.map((e) => [e.seq, e.type])).toEqual([[3, 'alert'], [5, 'alert.swarm'], [9, 'alert']]);
    expect(await readdir(path.join(dir, 's', 'mesh', 'sparse'))).not.toContain(b.node.nodeId);

    s = await startS(port);
    live.add(s);
    expect(seqOf(s, a)).toBe(before);
    await link(s, a);
    await link(s, b);
    await linked();
    for (const type of ['reading', 'alert', 'reading']) await a.mesh.append(type, { after: 'restart' });
    await caughtUp(s, a);
    await caughtUp(b, a);
    expect((await all(s.mesh.store.read(a.node.nodeId, before + 1))).map((e) => [e.seq, e.type])).toEqual([[before + 2, 'alert']]);
    expect(counter(s, 'feeds.fork') + counter(s, 'feeds.gap')).toBe(0);
  }, 60_000);

  it('relays within its bound: with B cut off, what S cannot hold is dropped and counted, and B after the heal counts what it cannot get and continues past it', async () => {
    const cut = ['s-b', 'b-s'].map((key) => proxies.get(key) as TcpProxy);
    for (const proxy of cut) proxy.cut();
    await waitFor(() => !s.mesh.linkedPeers().includes(b.node.nodeId) && b.mesh.linkedPeers().length === 0, 20_000, describeAll);
    const bHead = seqOf(b, a);
    const dropped = counter(s, 'mesh.relay.dropped');
    // Twice the relay bound in readings, none kept.
    const body = { pad: 'r'.repeat(1000) };
    for (let i = 0; i < (2 * RELAY_BYTES) / 1000; i++) {
      await a.mesh.append('reading', { i, ...body });
      const relay = (s.mesh.status().replication as { relay: { bytes: number; maxBytes: number } }).relay;
      expect(relay.bytes).toBeLessThanOrEqual(RELAY_BYTES);
    }
    await caughtUp(s, a);
    expect(counter(s, 'mesh.relay.dropped')).toBeGreaterThan(dropped);
    const relay = (s.mesh.status().replication as { relay: { bytes: number; maxBytes: number; entries: number } }).relay;
    expect(relay.bytes).toBeLessThanOrEqual(RELAY_BYTES);
    expect(relay.maxBytes).toBe(RELAY_BYTES);
    for (const proxy of cut) proxy.heal();
    await linked();
    // B lacks entries nobody it can reach still holds: it says so (counted), and continues A's feed past them.
    await caughtUp(b, a);
    expect(counter(b, 'mesh.unrecoverable_gaps')).toBeGreaterThan(0);
    const skipped = counter(b, 'feeds.resumed_skipped');
    expect(skipped).toBeGreaterThan(0);
    const held = (await all(b.mesh.store.read(a.node.nodeId))).map((e) => e.seq);
    const resumedAt = bHead + skipped + 1;
    expect(held).toEqual([...Array.from({ length: bHead }, (_, i) => i + 1), ...Array.from({ length: seqOf(a, a) - resumedAt + 1 }, (_, i) => resumedAt + i)]);
    // And it goes on following A through S.
    await a.mesh.append('alert', { after: 'heal' });
    await caughtUp(b, a);
    expect((await all(b.mesh.store.read(a.node.nodeId, seqOf(a, a)))).map((e) => e.type)).toEqual(['alert']);
  }, 90_000);
});
