/**
 * Property tests (fast-check) of what a node decodes from its peers: feed
 * entries, private boxes, mesh messages, shared-state ops and updates, fork
 * proofs. Random and mutated inputs are refused with the decoder's own error
 * code (never another exception), a mutation is never taken for the
 * original, and each refusal is counted where the node counts it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes, isApiaryError } from '../../../runtime/errors.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { decodeEntry, encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { decodeLines } from '../../../runtime/mesh/feed-sync.js';
import { decodeForkProof } from '../../../runtime/mesh/fork-proofs.js';
import { loadMeshIdentity, rawX25519PublicKey, type BoxKeyPair } from '../../../runtime/mesh/mesh-identity.js';
import { openPrivateEntry } from '../../../runtime/mesh/private-entries.js';
import { decodeMeshMessage, encodeMeshMessage, type MeshHeader } from '../../../runtime/mesh/mesh-protocol.js';
import { openSealedBox, sealForRecipients } from '../../../runtime/mesh/private-box.js';
import { checkStateUpdate, OPS_MAP } from '../../../runtime/mesh/shared-state-rules.js';
import { parseStateOp, signStateOp, stateOpId, verifyStateOp, type StateOp } from '../../../runtime/mesh/state-op.js';

const RUNS = { numRuns: 300 };
let dir = '';
let node: NodeIdentity;
let other: NodeIdentity;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-decoders-'));
  node = (await loadOrCreateIdentity(path.join(dir, 'node'))).identity;
  other = (await loadOrCreateIdentity(path.join(dir, 'other'))).identity;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Calls `decode`; true if it returned, false if it threw an ApiaryError with one of `codes`; anything else fails the property. */
function refusedWith(codes: readonly string[], decode: () => unknown): boolean {
  try {
    decode();
    return true;
  } catch (err) {
    if (!isApiaryError(err) || !codes.includes(err.code)) throw new Error(`uncontrolled error: ${String(err)}`);
    return false;
  }
}

/** A byte string with a few bytes changed, inserted or removed. */
function mutated(original: Buffer): fc.Arbitrary<Buffer> {
  const edit = fc.record({ at: fc.nat({ max: original.length }), kind: fc.constantFrom('flip', 'insert', 'delete'), byte: fc.integer({ min: 0, max: 255 }) });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let bytes = Buffer.from(original);
    for (const { at, kind, byte } of edits) {
      const i = Math.min(at, bytes.length - 1);
      if (kind === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (byte || 1);
      else if (kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at)]);
      else bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
    }
    return bytes;
  });
}

describe('feed entry decoding', () => {
  let entry: FeedEntry;
  let bytes: Buffer;
  beforeAll(() => {
    entry = signEntry(node, { seq: 2, prev: 'A'.repeat(43), hlc: { l: 1_700_000_000_000, c: 3 }, type: 'reading', body: { weightKg: 41.5, note: 'ok' } });
    bytes = encodeEntry(entry);
  });
  const codes: readonly string[] = [ErrorCodes.FEED_ENTRY_INVALID, ErrorCodes.FEED_SIGNATURE_INVALID];

  it('refuses random bytes and random JSON with its own codes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (random) => !refusedWith(codes, () => decodeEntry(random))), RUNS);
    fc.assert(fc.property(fc.json(), (json) => !refusedWith(codes, () => decodeEntry(Buffer.from(json)))), RUNS);
    // Found by the box property below: String() of such a value throws a TypeError.
    expect(() => decodeEntry(Buffer.from('{"v":{"toString":""}}'))).toThrow(expect.objectContaining({ code: ErrorCodes.FEED_ENTRY_INVALID }) as Error);
  });

  it('never takes a mutated entry for another one: it is refused, or it is the very same entry', () => {
    fc.assert(fc.property(mutated(bytes), (changed) => {
      let decoded;
      try {
        decoded = decodeEntry(changed);
      } catch (err) {
        return isApiaryError(err) && codes.includes(err.code);
      }
      return entryHash(decoded) === entryHash(entry);
    }), RUNS);
  });

  it('counts every refused line where the node counts it (feeds.rejected.<code>)', () => {
    fc.assert(fc.property(fc.array(fc.oneof(mutated(bytes), fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b))), { maxLength: 20 }), (lines) => {
      const counters = new Counters();
      const accepted = decodeLines(lines, counters);
      const refused = Object.entries(counters.snapshot()).filter(([k]) => k.startsWith('feeds.rejected.')).reduce((n, [, v]) => n + v, 0);
      return accepted.length + refused === lines.length && accepted.every((e) => entryHash(e) === entryHash(entry));
    }), RUNS);
  });
});

describe('private box opening', () => {
  const box = (): BoxKeyPair => {
    const { privateKey } = generateKeyPairSync('x25519');
    return { publicKey: rawX25519PublicKey(privateKey), privateKey };
  };
  const alice = { nodeId: 'aaaaaaaaaaaa', box: box() };
  const bob = { nodeId: 'bbbbbbbbbbbb', box: box() };
  const plaintext = Buffer.from('{"type":"reading","body":{"secret":1}}');
  const sealed = sealForRecipients(plaintext, { nodeId: alice.nodeId, ...alice.box }, [{ nodeId: bob.nodeId, box: bob.box.publicKey }], 'apiary-feed-entry', '["aaaaaaaaaaaa",7]');
  const codes = [ErrorCodes.PRIVATE_BOX_INVALID];

  it('refuses random values with its own code', () => {
    fc.assert(fc.property(fc.anything(), (random) => !refusedWith(codes, () => openSealedBox(random, bob, 'apiary-feed-entry', '["aaaaaaaaaaaa",7]'))), RUNS);
    expect(() => openSealedBox({ ...sealed, v: { toString: '' } }, bob, 'apiary-feed-entry')).toThrow(expect.objectContaining({ code: ErrorCodes.PRIVATE_BOX_INVALID }) as Error);
  });

  it('a private entry with any body is opened, relayed or refused, and counted: never thrown', async () => {
    const identity = await loadMeshIdentity({ dataDir: path.join(dir, 'node'), node, name: 'n', ownerKeyFile: path.join(dir, 'owner.json'), now: () => Date.now() });
    fc.assert(fc.property(fc.oneof(fc.json(), fc.record({ v: fc.anything(), recipients: fc.dictionary(fc.constantFrom(node.nodeId, other.nodeId, 'x'), fc.anything()) }).map((b) => JSON.stringify(b))), (body) => {
      const counters = new Counters();
      const entry = signEntry(other, { seq: 1, prev: null, hlc: { l: 1, c: 0 }, type: 'private', body: JSON.parse(body) as unknown });
      const opened = openPrivateEntry(entry, identity, counters);
      const counted = ['mesh.private_opened', 'mesh.private_legacy_opened', 'mesh.private_relayed', 'mesh.private_malformed', 'mesh.rejected.private_unbound'].reduce((n, k) => n + counters.get(k), 0);
      return opened === undefined && counted === 1;
    }), { numRuns: 100 });
  });

  it('never opens a box with a changed field, ciphertext, binding or context', () => {
    const fields = ['v', 'alg', 'epk', 'nonce', 'ct', 'recipients'] as const;
    const mutation = fc.oneof(
      fc.record({ field: fc.constantFrom(...fields), value: fc.anything() }).map(({ field, value }) => ({ box: { ...sealed, [field]: value }, binding: '["aaaaaaaaaaaa",7]', context: 'apiary-feed-entry' })),
      fc.record({ field: fc.constantFrom('epk', 'nonce', 'ct'), at: fc.nat() }).map(({ field, at }) => {
        const raw = Buffer.from(sealed[field], 'base64url');
        raw[at % raw.length] = (raw[at % raw.length] ?? 0) ^ 0x01;
        return { box: { ...sealed, [field]: raw.toString('base64url') }, binding: '["aaaaaaaaaaaa",7]', context: 'apiary-feed-entry' };
      }),
      fc.string({ maxLength: 40 }).filter((b) => b !== '["aaaaaaaaaaaa",7]').map((binding) => ({ box: sealed, binding, context: 'apiary-feed-entry' })),
      fc.string({ maxLength: 40 }).filter((c) => c !== 'apiary-feed-entry').map((context) => ({ box: sealed, binding: '["aaaaaaaaaaaa",7]', context })),
    );
    fc.assert(fc.property(mutation, ({ box: changed, binding, context }) => {
      try {
        return openSealedBox(JSON.parse(JSON.stringify(changed)) as unknown, bob, context, binding).equals(plaintext) && JSON.stringify(changed) === JSON.stringify(sealed);
      } catch (err) {
        return isApiaryError(err) && err.code === ErrorCodes.PRIVATE_BOX_INVALID;
      }
    }), RUNS);
    expect(openSealedBox(sealed, bob, 'apiary-feed-entry', '["aaaaaaaaaaaa",7]')).toEqual(plaintext);
  });
});

describe('mesh message decoding', () => {
  const codes = [ErrorCodes.MESH_MESSAGE_INVALID];
  const headers: MeshHeader[] = [
    { t: 'have', have: { aaaaaaaaaaaa: 3 }, sv: 'AA==' },
    { t: 'want', want: { aaaaaaaaaaaa: 1 }, id: 4 },
    { t: 'entries', hops: 0, reply: true, certs: [], starts: { aaaaaaaaaaaa: 2 }, answers: 4 },
    { t: 'state', update: 'AAA=', hops: 1 },
    { t: 'fork', hops: 0 },
  ];

  it('refuses random bytes, random JSON and mutated messages with its own code', () => {
    // Returning or refusing with MESH_MESSAGE_INVALID are both fine here; any other exception fails (refusedWith throws).
    const controlled = (bytes: Buffer) => {
      refusedWith(codes, () => decodeMeshMessage(bytes));
      return true;
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (random) => controlled(Buffer.from(random))), RUNS);
    fc.assert(fc.property(fc.json(), (json) => controlled(Buffer.from(json))), RUNS);
    fc.assert(fc.property(fc.constantFrom(...headers).chain((h) => mutated(encodeMeshMessage(h, h.t === 'fork' ? [Buffer.from('{}'), Buffer.from('{}')] : []))), controlled), RUNS);
  });

  it('refuses a header with any field replaced by a random value, unless it is still a valid header', () => {
    fc.assert(fc.property(fc.constantFrom(...headers), fc.string({ maxLength: 12 }), fc.anything(), (header, field, value) => {
      const changed = { ...header, [field]: value };
      let decoded;
      try {
        decoded = decodeMeshMessage(Buffer.from(JSON.stringify(changed)));
      } catch (err) {
        return isApiaryError(err) && err.code === ErrorCodes.MESH_MESSAGE_INVALID;
      }
      return decoded.header.t === header.t && decoded.header.t !== 'fork'; // a fork proof always has two lines
    }), RUNS);
  });
});

describe('shared-state ops, updates and fork proofs', () => {
  let op: StateOp;
  let text: string;
  beforeAll(() => {
    op = signStateOp(node, { map: 'thresholds', k: 'swarming', value: 0.7, hlc: { l: Date.now(), c: 0 } });
    text = JSON.stringify(op);
  });

  it('never takes a mutated op for another one', () => {
    fc.assert(fc.property(mutated(Buffer.from(text)), (changed) => {
      try {
        return stateOpId(verifyStateOp(parseStateOp(changed.toString('utf8')))) === stateOpId(op);
      } catch (err) {
        return isApiaryError(err) && err.code === ErrorCodes.SHARED_STATE_INVALID;
      }
    }), RUNS);
  });

  it('refuses random and mutated Yjs updates with a reason, and leaves the document as it was', () => {
    const doc = new Y.Doc();
    doc.getMap(OPS_MAP).set(stateOpId(op), text);
    const honest = (() => {
      const copy = new Y.Doc();
      Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
      const sv = Y.encodeStateVector(copy);
      const next = signStateOp(other, { map: 'members', k: other.nodeId, value: { name: 'o' }, hlc: { l: Date.now(), c: 0 } });
      copy.getMap(OPS_MAP).set(stateOpId(next), JSON.stringify(next));
      return Buffer.from(Y.encodeStateAsUpdate(copy, sv));
    })();
    const before = Buffer.from(Y.encodeStateAsUpdate(doc));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), mutated(honest)), (update) => {
      const checked = checkStateUpdate(doc, update, Date.now(), 60_000);
      return 'refusal' in checked || checked.added.every(({ op: added }) => added.origin === other.nodeId || added.origin === node.nodeId);
    }), RUNS);
    expect(Buffer.from(Y.encodeStateAsUpdate(doc)).equals(before)).toBe(true);
    expect(checkStateUpdate(doc, honest, Date.now(), 60_000)).toMatchObject({ added: [expect.anything()] });
  });

  it('takes no random or mutated pair of lines for a fork proof', () => {
    const a = encodeEntry(signEntry(node, { seq: 1, prev: null, hlc: { l: 1, c: 0 }, type: 'reading', body: 1 }));
    const b = encodeEntry(signEntry(node, { seq: 1, prev: null, hlc: { l: 1, c: 0 }, type: 'reading', body: 2 }));
    expect(decodeForkProof(a, b)).toBeDefined();
    expect(decodeForkProof(a, a)).toBeUndefined();
    fc.assert(fc.property(fc.oneof(mutated(a), fc.uint8Array({ maxLength: 300 }).map((x) => Buffer.from(x))), mutated(b), (x, y) => {
      const proof = decodeForkProof(x, y);
      return proof === undefined || (proof.a.origin === node.nodeId && entryHash(proof.a) !== entryHash(proof.b));
    }), RUNS);
  });
});
