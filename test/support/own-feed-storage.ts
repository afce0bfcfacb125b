/**
 * A node's storage over its own signed feed, without the rest of the node:
 * the real NodeStorage and a real FeedStore on disk, entries signed by a
 * real identity, private ones sealed as the mesh seals them. For the one
 * write path tests (issue 16), which restart, crash and roll back this
 * storage on real files, and for the bench's storage section (no vitest here).
 */
import { createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseConfig } from '../../runtime/config/load-config.js';
import { ownFeed } from '../../runtime/core/feed-index.js';
import { NodeStorage } from '../../runtime/core/node-storage.js';
import { Counters } from '../../runtime/counters.js';
import { signEntry, type FeedEntry } from '../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../runtime/mesh/feed-store.js';
import type { MemberDirectory } from '../../runtime/mesh/member-directory.js';
import { loadMeshIdentity, rawX25519PublicKey, type BoxKeyPair, type MeshIdentity } from '../../runtime/mesh/mesh-identity.js';
import { PRIVATE_BOX_ALG, type SealedBox } from '../../runtime/mesh/private-box.js';
import { openOwnPrivateEntry, PRIVATE_ENTRY_TYPE, sealPrivateBody } from '../../runtime/mesh/private-entries.js';
import { loadOrCreateIdentity } from '../../runtime/identity/identity.js';

export interface OwnFeedStorage {
  storage: NodeStorage;
  store: FeedStore | undefined;
  counters: Counters;
  /** Signs and appends one entry of this node's feed. */
  append: (type: string, body: unknown) => Promise<FeedEntry>;
  /** Seals {type, body} for this node alone and appends it, as mesh.appendPrivate does. */
  appendSealed: (type: string, body: unknown) => Promise<FeedEntry>;
  /** Appends {type, body} sealed as releases before derived content keys did (a random key). */
  appendLegacySealed: (type: string, body: unknown) => Promise<FeedEntry>;
  close: () => Promise<void>;
}

/** The i-th temperature reading, as the recorder stores it. */
export const reading = (i: number) => ({ channel: 'temperature', value: 20 + i / 10, unit: '°C', t: 1_700_000_000_000 + i * 60_000, time: new Date(1_700_000_000_000 + i * 60_000).toISOString() });

/** Every record of a stream, as its readers see it. */
export async function readAll(storage: NodeStorage, name: string): Promise<{ seq: number; body: unknown }[]> {
  const stream = await storage.stream(name);
  const out: { seq: number; body: unknown }[] = [];
  for await (const record of stream.read(0)) out.push({ seq: record.seq, body: JSON.parse(record.payload.toString('utf8')) as unknown });
  return out;
}

/** The node's identities, made once per test directory (a node id and a box key). */
export async function meshIdentityIn(dir: string): Promise<MeshIdentity> {
  const node = (await loadOrCreateIdentity(path.join(dir, 'id'))).identity;
  return loadMeshIdentity({ dataDir: path.join(dir, 'id'), node, name: 'one-write', ownerKeyFile: path.join(dir, 'owner.json'), now: () => Date.now() });
}

/** No recipient but this node is ever looked up. */
const NO_MEMBERS = { get: () => undefined } as unknown as MemberDirectory;

export async function openOwnFeedStorage(dataDir: string, identity: MeshIdentity, { mesh = true } = {}): Promise<OwnFeedStorage> {
  const config = parseConfig({ app: 'sensor-node', node: { name: 'one-write', dataDir }, broker: { port: 0 }, homeAssistant: { enabled: false }, decisions: [], storage: { fsyncInterval: '0s' } });
  const counters = new Counters();
  const storage = new NodeStorage(config, counters);
  await storage.start();
  const nodeId = identity.node.nodeId;
  let store: FeedStore | undefined;
  if (mesh) {
    store = new FeedStore({ dir: path.join(dataDir, 'mesh', 'feeds'), counters, segmentBytes: 1024 * 1024, maxBytesPerOrigin: 16 * 1024 * 1024, self: nodeId });
    await store.open();
    storage.attachFeed(ownFeed({ nodeId, store, openOwn: (entry) => openOwnPrivateEntry(entry, identity) }));
  }
  const appendWith = async (type: string, body: (seq: number) => unknown): Promise<FeedEntry> => {
    if (!store) throw new Error('mesh off');
    const head = store.head(nodeId);
    const entry = signEntry(identity.node, { seq: head.seq + 1, prev: head.hash, hlc: { l: Date.now(), c: 0 }, type, body: body(head.seq + 1) });
    const applied = await store.apply(entry);
    if (applied !== 'applied') throw new Error(`own entry ${entry.seq} not applied: ${applied}`);
    return entry;
  };
  return {
    storage,
    store,
    counters,
    append: (type, body) => appendWith(type, () => body),
    appendSealed: (type, body) => appendWith(PRIVATE_ENTRY_TYPE, (seq) => sealPrivateBody(type, body, [], identity, NO_MEMBERS, counters, seq)),
    appendLegacySealed: (type, body) => appendWith(PRIVATE_ENTRY_TYPE, (seq) => legacySeal(Buffer.from(JSON.stringify({ type, body })), { nodeId, box: identity.box }, [], 'apiary-feed-entry', JSON.stringify([nodeId, seq]))),
    close: async () => { await storage.close(); await store?.close(); },
  };
}

/**
 * A v2 box as releases before derived content keys sealed it (a random
 * content key), written from the scheme in private-box.ts, independently of
 * its code: what an upgraded (or rolled back and forward) node finds in its feed.
 */
export function legacySeal(plaintext: Buffer, sender: { nodeId: string; box: BoxKeyPair }, recipients: { nodeId: string; box: BoxKeyPair }[], context: string, binding: string): SealedBox {
  const bound = `${context}\nbound:${binding}`;
  const all = [sender, ...recipients];
  const ids = all.map((n) => n.nodeId).sort();
  const aad = Buffer.from(JSON.stringify(['apiary-private-v1', bound, ids]));
  const seal = (key: Buffer, nonce: Buffer, data: Buffer) => {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(aad, { plaintextLength: data.length });
    return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
  };
  const contentKey = randomBytes(32);
  const nonce = randomBytes(12);
  const ephemeral = generateKeyPairSync('x25519').privateKey;
  const epk = Buffer.from(rawX25519PublicKey(ephemeral), 'base64url');
  const wraps: Record<string, { nonce: string; key: string }> = {};
  for (const n of all) {
    const pub = Buffer.from(n.box.publicKey, 'base64url');
    const shared = diffieHellman({ privateKey: ephemeral, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: n.box.publicKey }, format: 'jwk' }) });
    const wrapKey = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, pub]), `apiary-private-v1\n${bound}`, 32));
    const wrapNonce = randomBytes(12);
    wraps[n.nodeId] = { nonce: wrapNonce.toString('base64url'), key: seal(wrapKey, wrapNonce, contentKey).toString('base64url') };
  }
  return { v: 2, alg: PRIVATE_BOX_ALG, epk: epk.toString('base64url'), nonce: nonce.toString('base64url'), ct: seal(contentKey, nonce, plaintext).toString('base64url'), recipients: wraps };
}
