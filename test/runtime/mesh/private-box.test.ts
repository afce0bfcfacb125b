import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { MAX_ENTRY_BYTES } from '../../../runtime/mesh/feed-entry.js';
import { loadOrCreateBoxKey, rawX25519PublicKey, type BoxKeyPair } from '../../../runtime/mesh/mesh-identity.js';
import {
  MAX_CT_CHARS, MAX_PLAINTEXT_BYTES, MAX_RECIPIENTS, openOwnBox, openSealedBox, sealForRecipients, type SealedBox,
} from '../../../runtime/mesh/private-box.js';
import { legacySeal } from '../../support/own-feed-storage.js';

interface Node { nodeId: string; box: BoxKeyPair }

/** A valid node id ([a-z2-7]{12}) per index. */
const idFor = (i: number) => `${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`.padEnd(12, 'z');
const freshBox = (): BoxKeyPair => {
  const { privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawX25519PublicKey(privateKey), privateKey };
};
const flipBit = (b64: string, at = 0) => {
  const bytes = Buffer.from(b64, 'base64url');
  bytes[at] = (bytes[at] ?? 0) ^ 1;
  return bytes.toString('base64url');
};
/** The same 32 bytes, spelled with stray low bits in the last character (43 chars carry 258 bits). */
const nonCanonical = (b64: string) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return b64.slice(0, -1) + alphabet.charAt(alphabet.indexOf(b64.slice(-1)) + 1);
};
const invalidBox = (message?: RegExp) => expect.objectContaining({
  code: ErrorCodes.PRIVATE_BOX_INVALID, ...(message ? { message: expect.stringMatching(message) as string } : {}),
}) as Error;

describe('private boxes', () => {
  const context = 'stream:hive-7';
  const plaintext = Buffer.from(JSON.stringify({ channel: 'queen-piping', value: 412.5, note: 'secret-reading' }));
  let dir: string;
  let alice: Node; let bob: Node; let carol: Node; let dave: Node; let mallory: Node;
  const sealed = (extra: Node[] = []) => sealForRecipients(
    plaintext, { nodeId: alice.nodeId, ...alice.box }, [bob, carol, dave, ...extra].map((n) => ({ nodeId: n.nodeId, box: n.box.publicKey })), context,
  );
  const open = (box: unknown, who: Node, ctx = context) => openSealedBox(JSON.parse(JSON.stringify(box)), who, ctx);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-private-box-'));
    const names = ['alice', 'bob', 'carol', 'dave', 'mallory'];
    const nodes = await Promise.all(names.map(async (name, i) => {
      await mkdir(path.join(dir, name));
      return { nodeId: idFor(i), box: await loadOrCreateBoxKey(path.join(dir, name)) };
    }));
    [alice, bob, carol, dave, mallory] = nodes as [Node, Node, Node, Node, Node];
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('opens for each listed recipient, and for the sender, who is added automatically', () => {
    const box = sealed();
    expect(Object.keys(box.recipients).sort()).toEqual([alice, bob, carol, dave].map((n) => n.nodeId).sort());
    for (const who of [bob, carol, dave, alice]) expect(open(box, who)).toEqual(plaintext);
  });

  it('tells a node that is not listed that it is not a recipient', () => {
    expect(() => open(sealed(), mallory)).toThrow(invalidBox(/not a recipient/));
    // A node claiming a listed id without its key still fails, on authentication.
    expect(() => open(sealed(), { nodeId: bob.nodeId, box: mallory.box })).toThrow(invalidBox(/authentication/));
  });

  it('hides the plaintext, and never seals the same way twice', () => {
    const a = sealed();
    const b = sealed();
    const wire = Buffer.from(JSON.stringify(a));
    expect(wire.includes(plaintext)).toBe(false);
    expect(wire.includes(Buffer.from('secret-reading'))).toBe(false);
    expect(Buffer.from(a.ct, 'base64url').includes(Buffer.from('secret-reading'))).toBe(false);
    expect(a.ct).not.toBe(b.ct);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.epk).not.toBe(b.epk);
    expect(a.recipients[bob.nodeId]?.key).not.toBe(b.recipients[bob.nodeId]?.key);
  });

  it('fails authentication when anything is tampered with, and returns nothing', () => {
    const box = sealed();
    const bobWrap = box.recipients[bob.nodeId] as { nonce: string; key: string };
    const carolWrap = box.recipients[carol.nodeId] as { nonce: string; key: string };
    const withoutCarol = Object.fromEntries(Object.entries(box.recipients).filter(([id]) => id !== carol.nodeId));
    const tampered: SealedBox[] = [
      { ...box, ct: flipBit(box.ct) },
      { ...box, ct: flipBit(box.ct, Buffer.from(box.ct, 'base64url').length - 1) }, // the tag
      { ...box, nonce: flipBit(box.nonce) },
      { ...box, epk: flipBit(box.epk) },
      { ...box, recipients: { ...box.recipients, [bob.nodeId]: { ...bobWrap, key: flipBit(bobWrap.key) } } },
      { ...box, recipients: { ...box.recipients, [bob.nodeId]: { ...bobWrap, nonce: flipBit(bobWrap.nonce) } } },
      { ...box, recipients: { ...box.recipients, [bob.nodeId]: carolWrap } },
      { ...box, recipients: { ...box.recipients, [mallory.nodeId]: carolWrap } }, // an entry added
      { ...box, recipients: withoutCarol }, // an entry removed
    ];
    for (const t of tampered) expect(() => open(t, bob)).toThrow(invalidBox(/authentication/));
    expect(() => open(box, bob, 'stream:hive-8')).toThrow(invalidBox(/authentication/));
    // Only bob's wrap was touched: the others still open that box.
    expect(open(tampered[4], carol)).toEqual(plaintext);
  });

  it('rejects malformed boxes before any crypto', () => {
    const box = sealed();
    const many = Object.fromEntries(Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => [idFor(i), box.recipients[bob.nodeId]]));
    const cases: [unknown, RegExp][] = [
      [null, /not a JSON object/],
      ['{}', /not a JSON object/],
      [[box], /not a JSON object/],
      [{ ...box, sender: alice.nodeId }, /unknown field\(s\) sender/],
      [{ ...box, v: 3 }, /version 3/],
      [{ ...box, alg: 'x25519-aes' }, /algorithm/],
      [{ ...box, recipients: many }, /65 recipients/],
      [{ ...box, recipients: {} }, /0 recipients/],
      [{ ...box, ct: 'A'.repeat(MAX_CT_CHARS + 4) }, /ct is \d+ characters/],
      [{ ...box, ct: '' }, /ct is not base64url/],
      [{ ...box, nonce: `${box.nonce.slice(0, -1)}+` }, /nonce is not base64url/],
      [{ ...box, nonce: `${box.nonce}==` }, /nonce is not base64url/],
      [{ ...box, nonce: box.nonce.slice(0, -2) }, /nonce is not base64url of 12 bytes/],
      [{ ...box, epk: nonCanonical(box.epk) }, /epk is not base64url of 32 bytes/],
      [{ ...box, epk: 42 }, /epk is not base64url/],
      [{ ...box, recipients: { ...box.recipients, 'NOT-AN-ID': box.recipients[bob.nodeId] } }, /is not a node id/],
      [{ ...box, recipients: { ...box.recipients, [bob.nodeId]: { ...box.recipients[bob.nodeId], extra: 1 } } }, /unknown field\(s\) extra/],
      [{ ...box, recipients: { ...box.recipients, [bob.nodeId]: 'key' } }, /is not an object/],
    ];
    for (const [raw, message] of cases) expect(() => openSealedBox(raw, bob, context)).toThrow(invalidBox(message));
  });

  it('bounds what it seals, and a full box fits a feed entry', () => {
    const toSender = (text: Buffer, others: Node[]) => sealForRecipients(
      text, { nodeId: alice.nodeId, ...alice.box }, others.map((n) => ({ nodeId: n.nodeId, box: n.box.publicKey })), context,
    );
    const others = Array.from({ length: MAX_RECIPIENTS - 1 }, (_, i) => ({ nodeId: idFor(i + 10), box: freshBox() }));
    const full = toSender(Buffer.alloc(MAX_PLAINTEXT_BYTES, 7), others);
    expect(full.ct.length).toBeLessThanOrEqual(MAX_CT_CHARS);
    // The box travels as the JSON-string body of a signed entry; leave room for the entry's other fields.
    expect(JSON.stringify(JSON.stringify(full)).length).toBeLessThan(MAX_ENTRY_BYTES - 1024);
    expect(open(full, others[62] as Node)).toEqual(Buffer.alloc(MAX_PLAINTEXT_BYTES, 7));
    expect(() => toSender(plaintext, [...others, mallory])).toThrow(invalidBox(/65 recipients/));
    expect(() => toSender(Buffer.alloc(MAX_PLAINTEXT_BYTES + 1), [bob])).toThrow(invalidBox(/plaintext is/));
    expect(() => toSender(plaintext, [bob, { nodeId: bob.nodeId, box: mallory.box }])).toThrow(invalidBox(/two different box keys/));
    expect(() => toSender(plaintext, [{ nodeId: 'Bob', box: bob.box }])).toThrow(invalidBox(/not a node id/));
  });

  it('a v2 box opens only with the binding it was sealed with, and cannot be turned into a v1 box', () => {
    const bound = sealForRecipients(plaintext, { nodeId: alice.nodeId, ...alice.box }, [{ nodeId: bob.nodeId, box: bob.box.publicKey }], context, '["aaaaaaaaaaaa",5]');
    expect(bound.v).toBe(2);
    expect(openSealedBox(bound, bob, context, '["aaaaaaaaaaaa",5]')).toEqual(plaintext);
    expect(() => openSealedBox(bound, bob, context, '["aaaaaaaaaaaa",6]')).toThrow(invalidBox(/fails authentication/));
    expect(() => openSealedBox(bound, bob, context)).toThrow(invalidBox(/needs the binding/));
    expect(() => openSealedBox({ ...bound, v: 1 }, bob, context, '["aaaaaaaaaaaa",5]')).toThrow(invalidBox(/fails authentication/));
  });

  it('the sender opens its own box again without X25519; a box of others or of an older release is not its own', () => {
    const binding = '["aaaaaaaaaaaa",7]';
    const mine = sealForRecipients(plaintext, { nodeId: alice.nodeId, ...alice.box }, [{ nodeId: bob.nodeId, box: bob.box.publicKey }], context, binding);
    expect(openOwnBox(mine, alice, context, binding)).toEqual(plaintext);
    // Bob is a recipient, not the sender: he opens it through his wrap, never through the own key.
    expect(openOwnBox(mine, bob, context, binding)).toBeUndefined();
    expect(openSealedBox(mine, bob, context, binding)).toEqual(plaintext);
    // Another binding, or a flipped bit, is not this node's box (and the recipient's path refuses it).
    expect(openOwnBox(mine, alice, context, '["aaaaaaaaaaaa",8]')).toBeUndefined();
    expect(openOwnBox({ ...mine, ct: flipBit(mine.ct) }, alice, context, binding)).toBeUndefined();
    expect(() => openSealedBox({ ...mine, ct: flipBit(mine.ct) }, alice, context, binding)).toThrow(invalidBox(/fails authentication/));
    // A box Bob sealed listing Alice: hers to read, not hers as sender.
    const bobs = sealForRecipients(plaintext, { nodeId: bob.nodeId, ...bob.box }, [{ nodeId: alice.nodeId, box: alice.box.publicKey }], context, binding);
    expect(openOwnBox(bobs, alice, context, binding)).toBeUndefined();
    expect(openSealedBox(bobs, alice, context, binding)).toEqual(plaintext);
    // A box Alice sealed with an older release (a random content key) still opens, by X25519, and is told apart.
    const legacy = legacySeal(plaintext, alice, [bob], context, binding);
    expect(openOwnBox(legacy, alice, context, binding)).toBeUndefined();
    expect(openSealedBox(legacy, alice, context, binding)).toEqual(plaintext);
    expect(openSealedBox(legacy, bob, context, binding)).toEqual(plaintext);
    // Malformed input is refused before any key is used, as by openSealedBox.
    expect(() => openOwnBox({ ...mine, epk: 'not base64!' }, alice, context, binding)).toThrow(invalidBox(/epk/));
  });

  it('own content keys differ per box and per sender, and say nothing of the box key', () => {
    const binding = '["aaaaaaaaaaaa",9]';
    const a = sealForRecipients(plaintext, { nodeId: alice.nodeId, ...alice.box }, [], context, binding);
    const b = sealForRecipients(plaintext, { nodeId: alice.nodeId, ...alice.box }, [], context, binding);
    expect(a.ct).not.toBe(b.ct);
    // Alice's key on Dave's identity (same node id, another key pair) does not open it as own.
    expect(openOwnBox(a, { nodeId: alice.nodeId, box: dave.box }, context, binding)).toBeUndefined();
  });
});
