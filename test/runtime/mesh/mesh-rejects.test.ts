/**
 * Hostile and broken input at a node's broker and mesh: each is rejected and
 * counted, and the node keeps serving honest peers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { makeLinkToken } from '../../../runtime/mesh/link-token.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { connectAs, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('a mesh node under hostile input', () => {
  let dir: string;
  let victim: TestMeshNode;
  let sender: TestMeshNode;
  let outsider: TestMeshNode;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-rejects-'));
    const trusted = await Promise.all(['victim', 'sender'].map((n) => ownerKeyOf(path.join(dir, n))));
    await ownerKeyOf(path.join(dir, 'outsider'));
    victim = await startMeshNode({ name: 'victim', dir: path.join(dir, 'victim'), trustedOwners: trusted });
    sender = await startMeshNode({ name: 'sender', dir: path.join(dir, 'sender'), trustedOwners: trusted });
    outsider = await startMeshNode({ name: 'outsider', dir: path.join(dir, 'outsider'), trustedOwners: [] });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await Promise.all([victim, sender, outsider].map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  /** An MQTT connection to the victim's broker as `who`, with a fresh link token (and its link's client id: a new one replaces the last). */
  async function linkAs(who: TestMeshNode, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
    const client = await connectAs(who, victim, extra);
    clients.push(client);
    return client;
  }

  const entryOf = (who: TestMeshNode, seq: number, prev: string | null, body: unknown): FeedEntry =>
    signEntry(who.node, { seq, prev, hlc: { l: Date.now(), c: 0 }, type: 'reading', body });

  function sendEntries(client: MqttClient, from: TestMeshNode, lines: Buffer[], certs: unknown[] = [from.identity.certificate]): Promise<unknown> {
    return client.publishAsync(meshTopic('apiary', from.node.nodeId, victim.node.nodeId),
      encodeMeshMessage({ t: 'entries', hops: 0, reply: false, certs, starts: {} }, lines), { qos: 1 });
  }

  it('rejects forged, replayed, untrusted, oversized and malformed input, counts each, and keeps serving', async () => {
    const c = victim.counters;
    const client = await linkAs(sender);
    const first = entryOf(sender, 1, null, { value: 1 });

    // A forged entry: the body changed after signing.
    const forged = { ...first, body: '{"value":666}' };
    await sendEntries(client, sender, [encodeEntry(forged)]);
    await waitFor(() => c.get('feeds.rejected.APIARY_FEED_SIGNATURE_INVALID') === 1, 5_000);

    // The honest entry, then the same entry replayed: applied once, the replay counted.
    await sendEntries(client, sender, [encodeEntry(first)]);
    await sendEntries(client, sender, [encodeEntry(first)]);
    await waitFor(() => c.get('feeds.duplicate') === 1, 5_000);
    expect(c.get('feeds.applied')).toBe(1);

    // An outsider's entry relayed by a trusted peer: its owner is unknown here.
    await sendEntries(client, sender, [encodeEntry(entryOf(outsider, 1, null, { value: 2 }))], [outsider.identity.certificate]);
    await waitFor(() => c.get('feeds.rejected.unknown_node') === 1, 5_000);
    expect(c.get('mesh.rejected.certificate_untrusted')).toBe(1);

    // An entry over 64 KiB inside an acceptable message.
    await sendEntries(client, sender, [Buffer.from(JSON.stringify({ v: 1, pad: 'x'.repeat(70_000) }))]);
    await waitFor(() => c.get('feeds.rejected.APIARY_FEED_ENTRY_INVALID') === 1, 5_000);

    // A message that is not a mesh message at all.
    await client.publishAsync(meshTopic('apiary', sender.node.nodeId, victim.node.nodeId), Buffer.from('\u0000not json'), { qos: 1 });
    await waitFor(() => c.get('mesh.rejected.message_malformed') === 1, 5_000);

    // Publishing as another node (outside its own namespace): dropped by the broker.
    await client.publishAsync(meshTopic('apiary', outsider.node.nodeId, victim.node.nodeId), encodeMeshMessage({ t: 'have', have: {} }), { qos: 1 });
    await waitFor(() => c.get('broker.rejected.publish') === 1, 5_000);
    expect(c.get('mesh.received.have')).toBe(0);

    // An oversized MQTT packet: the connection is closed before it is buffered.
    const big = await linkAs(sender);
    const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish(meshTopic('apiary', sender.node.nodeId, victim.node.nodeId), Buffer.alloc(400_000, 0x61), { qos: 0 });
    await closed;
    await waitFor(() => c.get('broker.rejected.oversized') === 1, 5_000);

    // An untrusted node cannot link at all; nor can a replayed token.
    await expect(linkAs(outsider)).rejects.toThrow(/Not authorized|not authorized/i);
    expect(c.get('mesh.rejected.link_untrusted')).toBe(1);
    const token = makeLinkToken(sender.identity, victim.node.nodeId, Date.now(), `tcp:127.0.0.1:${victim.broker.port}`).password;
    await linkAs(sender, { password: token });
    await expect(linkAs(sender, { password: token })).rejects.toThrow(/Bad username or password/i);
    expect(c.get('mesh.rejected.link_replayed')).toBe(1);

    // Garbage bytes instead of MQTT: the connection is closed and counted.
    const raw = net.connect(victim.broker.port, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    await new Promise((resolve) => raw.once('close', resolve));
    const brokerRejects = Object.entries(c.snapshot()).filter(([k]) => k.startsWith('broker.rejected.') && !['broker.rejected.publish', 'broker.rejected.oversized', 'broker.rejected.bad-credentials', 'broker.rejected.not-authorized'].includes(k));
    expect(brokerRejects.length).toBeGreaterThan(0);

    // Still serving: the next honest entry applies (over a new link: each link above replaced the one before).
    await sendEntries(await linkAs(sender), sender, [encodeEntry(entryOf(sender, 2, entryHash(first), { value: 3 }))]);
    await waitFor(() => victim.mesh.store.head(sender.node.nodeId).seq === 2, 5_000);
    expect(c.get('feeds.applied')).toBe(2);
  });
});
