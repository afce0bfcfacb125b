/**
 * Issue 10, finding 12: a fork travels as proof and quarantines its origin
 * on every node; entries stamped beyond now + skew are refused; a relay's
 * `starts` cannot make a node skip an origin's early entries that another
 * peer holds.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { connectAs, meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('forks, future time and starts', () => {
  const bed = meshTestBed('forks');
  const clients: MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  async function trustingNodes(names: string[]): Promise<{ owners: string[]; dirs: string[] }> {
    const dirs = names.map((n) => path.join(bed.dir(), n));
    return { owners: await Promise.all(dirs.map(ownerKeyOf)), dirs };
  }

  /** A raw MQTT link as `who` to `victim`'s broker: what `who`'s own node would send, or would not. */
  async function rawLink(who: TestMeshNode, victim: TestMeshNode, certs: unknown[] = [who.identity.certificate]) {
    const client = await connectAs(who, victim);
    clients.push(client);
    return {
      entries: (entries: FeedEntry[], meta: { reply?: boolean; starts?: Record<string, number> } = {}) => client.publishAsync(meshTopic('apiary', who.node.nodeId, victim.node.nodeId),
        encodeMeshMessage({ t: 'entries', hops: 0, reply: meta.reply ?? false, certs, starts: meta.starts ?? {} }, entries.map(encodeEntry)), { qos: 1 }),
      have: (have: Record<string, number>) => client.publishAsync(meshTopic('apiary', who.node.nodeId, victim.node.nodeId), encodeMeshMessage({ t: 'have', have }), { qos: 1 }),
    };
  }

  const entryOf = (who: TestMeshNode, seq: number, prev: string | null, body: unknown, l = Date.now()): FeedEntry =>
    signEntry(who.node, { seq, prev, hlc: { l, c: 0 }, type: 'reading', body });

  it('sends a fork as proof: the origin is quarantined on every node, also one that never saw both versions', async () => {
    const { owners, dirs } = await trustingNodes(['a', 'b', 'forker', 'late']);
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners });
    bed.nodes.push(a);
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: owners, mesh: { neighbours: [{ url: a.broker.url, nodeId: a.node.nodeId }] } });
    const forker = await startMeshNode({ name: 'forker', dir: dirs[2] as string, trustedOwners: owners });
    bed.nodes.push(b, forker);
    await waitFor(() => a.mesh.directory.get(b.node.nodeId) !== undefined && b.mesh.directory.get(a.node.nodeId) !== undefined, 10_000, bed.status);

    const x1 = entryOf(forker, 1, null, { version: 'x' });
    const y1 = entryOf(forker, 1, null, { version: 'y' });
    const toA = await rawLink(forker, a);
    await toA.entries([x1]);
    // a passes x1 on to b: b holds one version only.
    await waitFor(() => b.mesh.store.head(forker.node.nodeId).seq === 1, 10_000, bed.status);
    await toA.entries([y1]);
    await waitFor(() => a.counters.get('feeds.fork') === 1, 10_000, bed.status);
    // The proof reaches b, which never saw y1.
    await waitFor(() => b.mesh.quarantine.has(forker.node.nodeId), 10_000, bed.status);
    expect(b.mesh.status().quarantined).toEqual([forker.node.nodeId]);

    // From now on the forker's entries are refused on both, and counted; what was held is kept.
    const x2 = entryOf(forker, 2, entryHash(x1), { version: 'x' });
    await (await rawLink(forker, b)).entries([x2]);
    await waitFor(() => b.counters.get('feeds.rejected.quarantined') === 1, 10_000, bed.status);
    expect(b.mesh.store.head(forker.node.nodeId).seq).toBe(1);
    // The proof is kept on disk, and given to a node that links later.
    expect(await readFile(path.join(b.dir, 'mesh', 'quarantine.json'), 'utf8')).toContain(forker.node.nodeId);
    const late = await startMeshNode({ name: 'late', dir: dirs[3] as string, trustedOwners: owners, mesh: { neighbours: [{ url: b.broker.url, nodeId: b.node.nodeId }] } });
    bed.nodes.push(late);
    await waitFor(() => late.mesh.quarantine.has(forker.node.nodeId), 10_000, bed.status);

    // Honest nodes keep working.
    await a.mesh.append('reading', { still: 'here' });
    await waitFor(() => late.mesh.store.head(a.node.nodeId).seq === 1, 10_000, bed.status);
  });

  it('refuses an entry stamped beyond now + clock skew, and takes the origin\'s next honest one', async () => {
    const { owners, dirs } = await trustingNodes(['victim', 'ahead']);
    const victim = await startMeshNode({ name: 'victim', dir: dirs[0] as string, trustedOwners: owners });
    const ahead = await startMeshNode({ name: 'ahead', dir: dirs[1] as string, trustedOwners: owners });
    bed.nodes.push(victim, ahead);
    const link = await rawLink(ahead, victim);
    // A day ahead: as the first entry of its feed it would drag every clock that takes it.
    await link.entries([entryOf(ahead, 1, null, { far: 'future' }, Date.now() + 86_400_000)]);
    await waitFor(() => victim.counters.get('feeds.rejected.future_time') === 1, 10_000, bed.status);
    expect(victim.mesh.store.head(ahead.node.nodeId).seq).toBe(0);
    await link.entries([entryOf(ahead, 1, null, { now: true })]);
    await waitFor(() => victim.mesh.store.head(ahead.node.nodeId).seq === 1, 10_000, bed.status);
  });

  it('does not start a feed late on a relay\'s word while another linked peer that holds the origin has not answered', async () => {
    const { owners, dirs } = await trustingNodes(['victim', 'origin', 'holder', 'relay']);
    const slow = { antiEntropyInterval: '1h' };
    const victim = await startMeshNode({ name: 'victim', dir: dirs[0] as string, trustedOwners: owners, mesh: slow });
    const origin = await startMeshNode({ name: 'origin', dir: dirs[1] as string, trustedOwners: owners, mesh: slow });
    // The holder answers nothing by itself (it has no link back to the victim): the test speaks for it.
    const holder = await startMeshNode({ name: 'holder', dir: dirs[2] as string, trustedOwners: owners, mesh: { ...slow, dialBack: false } });
    const relay = await startMeshNode({ name: 'relay', dir: dirs[3] as string, trustedOwners: owners, mesh: slow });
    bed.nodes.push(victim, origin, holder, relay);
    const feed: FeedEntry[] = [];
    for (let i = 1; i <= 6; i++) feed.push(await origin.mesh.append('reading', { i }));

    // The victim links to the holder, which says it holds the origin's feed up to 6.
    victim.mesh.link(holder.broker.url, holder.node.nodeId);
    const fromHolder = await rawLink(holder, victim, [holder.identity.certificate, origin.identity.certificate]);
    await waitFor(() => victim.counters.get('mesh.sent.hello') === 1, 10_000, bed.status);
    await fromHolder.have({ [origin.node.nodeId]: 6 });
    await waitFor(() => victim.counters.get('mesh.sent.want') >= 1, 10_000, bed.status);

    // A relay claims the origin's feed starts at 5 (as if retention dropped 1-4), with entries 5 and 6.
    const fromRelay = await rawLink(relay, victim, [relay.identity.certificate, origin.identity.certificate]);
    await fromRelay.entries(feed.slice(4), { reply: true, starts: { [origin.node.nodeId]: 5 } });
    await waitFor(() => victim.counters.get('feeds.late_start_deferred') === 1, 10_000, bed.status);
    expect(victim.mesh.store.head(origin.node.nodeId).seq).toBe(0);

    // The holder's answer comes: the whole feed, from 1.
    await fromHolder.entries(feed, { reply: true });
    await waitFor(() => victim.mesh.store.head(origin.node.nodeId).seq === 6, 10_000, bed.status);
    const seqs: number[] = [];
    for await (const e of victim.mesh.store.read(origin.node.nodeId)) seqs.push(e.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(victim.counters.get('feeds.joined_late_skipped')).toBe(0);
  });
});
