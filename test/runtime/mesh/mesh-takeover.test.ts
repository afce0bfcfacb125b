/**
 * Issue 10, finding 1: a trusted owner of another node must not be able to
 * take over a node id (another owner's node, or ours) by certifying it with
 * a box key of its own and a huge issuedAt. Real nodes on loopback; the
 * attacker is a trusted owner with a real node linked to both.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { makeLinkToken } from '../../../runtime/mesh/link-token.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { openSealedBox } from '../../../runtime/mesh/private-box.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

const TEN_YEARS = 10 * 365 * 24 * 3600_000;

/** What the attacker can sign: certificates for `victim` with its own owner key and box key, in every format. */
function forgedCertificates(victim: TestMeshNode, attackerOwner: NodeIdentity, attacker: TestMeshNode): unknown[] {
  const fields = { node: victim.node.publicKey, box: attacker.identity.box.publicKey, owner: attackerOwner.publicKey, name: victim.name, issuedAt: Date.now() + TEN_YEARS };
  const sign = (context: string, values: unknown[]) => attackerOwner.sign(Buffer.from(context + JSON.stringify(values), 'utf8')).toString('base64url');
  const v1 = { v: 1, ...fields, sig: sign('apiary-node-cert-v1\n', [fields.node, fields.box, fields.owner, fields.name, fields.issuedAt]) };
  // v2 needs the victim's self-signature: the attacker has only its own node key to make one with.
  const expiresAt = fields.issuedAt + 1000;
  const self = attacker.node.sign(Buffer.from(`apiary-node-self-v2\n${JSON.stringify([fields.node, fields.box, fields.owner, fields.issuedAt])}`, 'utf8')).toString('base64url');
  const v2 = { v: 2, ...fields, expiresAt, self, sig: sign('apiary-node-cert-v2\n', [fields.node, fields.box, fields.owner, fields.name, fields.issuedAt, expiresAt, self]) };
  return [v1, v2];
}

describe('certificate takeover', () => {
  const { dir, nodes, status } = meshTestBed('takeover');
  const clients: MqttClient[] = [];
  afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.endAsync(true))); });

  /** A raw MQTT link from `from` to `to`'s broker, authenticated with a genuine token of `from`. */
  async function linkAs(from: TestMeshNode, to: TestMeshNode): Promise<MqttClient> {
    const token = makeLinkToken(from.identity, to.node.nodeId, Date.now(), `tcp:127.0.0.1:${to.broker.port}`) as unknown;
    const password = (token as { password?: Buffer }).password ?? (token as Buffer);
    const client = await connectAsync(`mqtt://127.0.0.1:${to.broker.port}`, { protocolVersion: 4, clientId: `apiary-${from.node.nodeId}`, username: from.node.nodeId, password, reconnectPeriod: 0 });
    clients.push(client);
    return client;
  }

  it('refuses a certificate for another owner\'s node, or for ours, signed by a trusted owner with its own box key, and counts it; private entries stay sealed to the real key', async () => {
    const dirs = ['a', 'b', 'mallory'].map((n) => path.join(dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: owners });
    nodes.push(b);
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners, mesh: { neighbours: [{ url: b.broker.url, nodeId: b.node.nodeId }] } });
    nodes.push(a);
    const mallory = await startMeshNode({ name: 'mallory', dir: dirs[2] as string, trustedOwners: owners });
    nodes.push(mallory);
    const malloryOwner = (await loadOrCreateKeyFile(path.join(dirs[2] as string, 'owner.json'))).identity;
    const membersFile = (n: TestMeshNode) => path.join(n.dir, 'mesh', 'members.json');
    // Mallory's own certificate is learned from its genuine token: all else must stay as it was.
    const withoutMallory = (text: string): unknown => JSON.stringify(JSON.parse(text, (key, value: unknown) => (key === mallory.node.nodeId ? undefined : value)), (_key, value: unknown) =>
      (Array.isArray(value) ? value.filter((c: { node?: string }) => c?.node !== mallory.node.publicKey) : value));
    await waitFor(async () => (await readFile(membersFile(a), 'utf8').catch(() => '')).includes(b.node.publicKey)
      && (await readFile(membersFile(b), 'utf8').catch(() => '')).includes(a.node.publicKey), 15_000, status);

    for (const [victim, other] of [[a, b], [b, a]] as const) {
      await victim.mesh.directory.stop(); // no write in flight
      const before = withoutMallory(await readFile(membersFile(victim), 'utf8'));
      const client = await linkAs(mallory, victim);
      const certs = [...forgedCertificates(other, malloryOwner, mallory), ...forgedCertificates(victim, malloryOwner, mallory)];
      await client.publishAsync(meshTopic('apiary', mallory.node.nodeId, victim.node.nodeId), encodeMeshMessage({ t: 'entries', hops: 0, reply: false, certs, starts: {} }), { qos: 1 });
      await waitFor(() => victim.counters.get('mesh.received.entries') > 0 && victim.mesh.directory.get(mallory.node.nodeId) !== undefined, 5_000, status);
      await victim.mesh.directory.stop();
      // Every forgery refused and counted; nothing changed, in memory or on disk.
      expect(victim.counters.get('mesh.rejected.certificate_invalid')).toBe(4);
      expect(victim.mesh.directory.get(other.node.nodeId)?.box).toBe(other.identity.box.publicKey);
      expect(victim.mesh.directory.get(victim.node.nodeId)?.box).toBe(victim.identity.box.publicKey);
      expect(withoutMallory(await readFile(membersFile(victim), 'utf8'))).toEqual(before);
    }

    // a seals a private entry for b: b opens it; the attacker's box key cannot.
    const opened = new Promise<unknown>((resolve) => b.mesh.once('private', (m) => resolve(m.body)));
    const entry = await a.mesh.appendPrivate('note', { secret: 42 }, [b.node.nodeId]);
    expect(await opened).toEqual({ secret: 42 });
    expect(() => openSealedBox(JSON.parse(entry.body) as Parameters<typeof openSealedBox>[0], { nodeId: b.node.nodeId, box: mallory.identity.box }, 'apiary-feed-entry')).toThrow();
    // Both still serve each other.
    await b.mesh.append('reading', { after: 'attack' });
    await waitFor(() => a.mesh.store.head(b.node.nodeId).seq >= 1, 10_000, status);
  });
});
