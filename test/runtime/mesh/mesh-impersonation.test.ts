/**
 * Issue 10, findings 4 and 6, against real mesh nodes on loopback: a client
 * that has not authenticated as node V can neither speak for V on the mesh
 * topics nor take over V's link by reusing its client id; V's own link keeps
 * working, and every refusal is counted.
 */
import path from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEntry, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { connectAs, meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('a mesh node binds mesh messages and link ids to the authenticated node', () => {
  const bed = meshTestBed('impersonation');
  const clients: MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  /** victim and sender trust each other's owners; neither links by itself (the test plays sender's link). */
  async function startPair(broker: { anonymous?: 'loopback' | 'any' } = {}): Promise<{ victim: TestMeshNode; sender: TestMeshNode; third: TestMeshNode }> {
    const dirs = ['victim', 'sender', 'third'].map((n) => path.join(bed.dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const [victim, sender, third] = await Promise.all(dirs.map((dir, i) => startMeshNode({ name: ['victim', 'sender', 'third'][i] as string, dir, trustedOwners: owners, broker })));
    bed.nodes.push(victim as TestMeshNode, sender as TestMeshNode, third as TestMeshNode);
    return { victim: victim as TestMeshNode, sender: sender as TestMeshNode, third: third as TestMeshNode };
  }

  async function connect(victim: TestMeshNode, options: IClientOptions): Promise<MqttClient> {
    const client = await connectAsync(victim.broker.url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
    clients.push(client);
    return client;
  }

  /** `who`'s link to victim, as peer-link.ts makes it: its own client id and a fresh token. */
  const linkAs = async (victim: TestMeshNode, who: TestMeshNode, clientId = `apiary-${who.node.nodeId}`): Promise<MqttClient> => {
    const client = await connectAs(who, victim, { clientId, clean: false });
    clients.push(client);
    return client;
  };

  const entryOf = (who: TestMeshNode, seq: number, prev: string | null): FeedEntry =>
    signEntry(who.node, { seq, prev, hlc: { l: Date.now(), c: 0 }, type: 'reading', body: { value: seq } });
  const entries = (from: TestMeshNode, entry: FeedEntry): Buffer =>
    encodeMeshMessage({ t: 'entries', hops: 0, reply: false, certs: [from.identity.certificate], starts: {} }, [encodeEntry(entry)]);

  /** Everything published on victim's mesh topics that reached the broker's in-process subscribers (as the mesh sees it). */
  async function meshTap(victim: TestMeshNode): Promise<string[]> {
    const seen: string[] = [];
    await victim.broker.subscribe(`apiary/+/mesh/to/${victim.node.nodeId}`, (packet, done) => {
      seen.push(packet.topic);
      done();
    });
    return seen;
  }

  /** A QoS 1 sentinel from `client`, seen in-process: everything the client sent before it has been routed (or refused). */
  async function flushed(victim: TestMeshNode, client: MqttClient): Promise<void> {
    let arrived = false;
    const topic = `test/sentinel/${Math.random().toString(36).slice(2)}`;
    const deliver = (_packet: unknown, done: () => void) => {
      arrived = true;
      done();
    };
    await victim.broker.subscribe(topic, deliver);
    await client.publishAsync(topic, 'sentinel', { qos: 1 });
    await waitFor(() => arrived, 5_000);
    await victim.broker.unsubscribe(topic, deliver);
  }

  for (const anonymous of ['loopback', 'any'] as const) {
    it(`refuses a local client publishing as node V on the mesh topics (broker.anonymous: ${anonymous}), while V's own messages flow`, async () => {
      const { victim, sender } = await startPair({ anonymous });
      const c = victim.counters;
      const tap = await meshTap(victim);
      const forger = await connect(victim, { clientId: 'forger' });
      const topic = meshTopic('apiary', sender.node.nodeId, victim.node.nodeId);
      await forger.publishAsync(topic, encodeMeshMessage({ t: 'have', have: {} }), { qos: 1 });
      await forger.publishAsync(topic, Buffer.from('not a mesh message'), { qos: 0 });
      await forger.publishAsync(`apiary/${sender.node.nodeId}/state`, 'offline', { qos: 1, retain: true }); // V's namespace, too
      await flushed(victim, forger);
      expect(tap).toEqual([]);
      expect(c.get('broker.rejected.publish-mesh')).toBe(2);
      expect(c.get('broker.rejected.publish-foreign-namespace')).toBe(1);
      expect(c.get('mesh.received.have')).toBe(0);
      expect(c.get('mesh.rejected.message_malformed')).toBe(0);
      expect(forger.connected).toBe(true); // refused like mosquitto refuses: dropped, connection kept

      // V itself, over its authenticated link: applied.
      const link = await linkAs(victim, sender);
      await link.publishAsync(topic, entries(sender, entryOf(sender, 1, null)), { qos: 1 });
      await waitFor(() => victim.mesh.store.head(sender.node.nodeId).seq === 1, 5_000, bed.status);
      expect(tap).toEqual([topic]);
    });
  }

  it('never lets a local client read mesh messages, even with a subscription to everything', async () => {
    const { victim, sender } = await startPair();
    const c = victim.counters;
    const watcher = await connect(victim, { clientId: 'watcher' });
    const refusal = (await watcher.subscribeAsync(`apiary/+/mesh/#`).catch((err: unknown) => err)) as { packet?: { granted: number[] } };
    expect(refusal.packet?.granted).toEqual([0x80]);
    expect(c.get('broker.rejected.subscribe-mesh')).toBe(1);
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync('#', { qos: 1 });
    const link = await linkAs(victim, sender);
    await link.publishAsync(meshTopic('apiary', sender.node.nodeId, victim.node.nodeId), entries(sender, entryOf(sender, 1, null)), { qos: 1 });
    await waitFor(() => victim.mesh.store.head(sender.node.nodeId).seq === 1, 5_000, bed.status);
    await waitFor(() => c.get('broker.withheld.mesh') >= 1, 5_000);
    // What is not a mesh message still reaches it: the peer's retained liveness, a local message.
    await link.publishAsync(`apiary/${sender.node.nodeId}/state`, 'online', { qos: 1, retain: true });
    await watcher.publishAsync('test/hello', 'hi', { qos: 1 });
    await waitFor(() => seen.includes('test/hello') && seen.includes(`apiary/${sender.node.nodeId}/state`), 5_000, () => seen.join());
    expect(seen.filter((t) => t.includes('/mesh/'))).toEqual([]);
  });

  it('refuses another client reusing a peer\'s client id, instead of closing the peer\'s link', async () => {
    const { victim, sender, third } = await startPair();
    const c = victim.counters;
    const link = await linkAs(victim, sender);
    let linkClosed = false;
    link.on('close', () => { linkClosed = true; });
    const id = `apiary-${sender.node.nodeId}`;

    // A local anonymous client with V's link id: CONNACK 0x02.
    await expect(connect(victim, { clientId: id, clean: false })).rejects.toMatchObject({ code: 2 });
    // Another trusted node, with a valid token of its own, and V's link id: refused too.
    await expect(linkAs(victim, third, id)).rejects.toMatchObject({ code: 2 });
    // A peer linking under any other id than its own: refused.
    await expect(linkAs(victim, sender, 'sender-other-id')).rejects.toMatchObject({ code: 2 });
    expect(c.get('mesh.rejected.link_client_id')).toBe(3);
    expect(c.get('broker.rejected.identifier')).toBe(3);

    // V's link was never closed and still carries its messages.
    expect(linkClosed).toBe(false);
    expect(link.connected).toBe(true);
    await link.publishAsync(meshTopic('apiary', sender.node.nodeId, victim.node.nodeId), entries(sender, entryOf(sender, 1, null)), { qos: 1 });
    await waitFor(() => victim.mesh.store.head(sender.node.nodeId).seq === 1, 5_000, bed.status);
    expect(linkClosed).toBe(false);
    // Third's own link is accepted.
    expect((await linkAs(victim, third)).connected).toBe(true);
  });
});
