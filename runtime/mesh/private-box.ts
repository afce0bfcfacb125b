/**
 * Private boxes: a body sealed for a listed set of nodes, so that only they
 * can read it. Relays store and forward the signed feed entry carrying it,
 * and see ciphertext only.
 *
 * Scheme (one ephemeral key per box; the sender is always a recipient, so an
 * origin can read its own feed back):
 *   - a random 32-byte content key encrypts the plaintext once with
 *     ChaCha20-Poly1305 (RFC 8439), 12-byte random nonce, 16-byte tag
 *     appended to `ct`;
 *   - AAD = JSON.stringify(["apiary-private-v1", context, sorted recipient
 *     node ids]), so neither the recipient list nor the context can be
 *     swapped without the tag failing; a v2 box also binds a `binding`
 *     (for a feed entry: its origin and seq), appended to the context, so
 *     the body cannot be re-used in another place (issue 10, finding 13);
 *   - the content key is wrapped for each recipient: shared = X25519(ephemeral
 *     private, recipient box key) (RFC 7748), wrapping key = HKDF-SHA256
 *     (RFC 5869) with salt = epk || recipient public key and info =
 *     "apiary-private-v1\n" + context, then ChaCha20-Poly1305 with its own
 *     nonce and the same AAD.
 *
 * The content key is not drawn at random but derived, K = HKDF-SHA256(own
 * secret, salt = epk, info = "apiary-private-v1\nown\n" + context), where
 * the own secret is HKDF of the sender's box private key. To anyone else K
 * is as random as before (HKDF is a PRF under a secret key, and epk is fresh
 * per box); but the sender can open its own box again with one HKDF and no
 * X25519 (openOwnBox, which callers try first on their own entries), which
 * is what lets a node keep a sealed stream only in its feed and read it
 * back cheaply (issue 16, one write path). Boxes of
 * releases before this (a random K) fail that check and open as any other.
 *
 * Wire shape (all binary base64url without padding):
 *   {v:1|2, alg:"x25519-hkdf-sha256-chacha20poly1305", epk, nonce, ct,
 *    recipients: {[nodeId]: {nonce, key}}}
 * v1 (no binding) is what nodes sealed before v2; it still opens, the caller
 * deciding where that is safe (private-entries.ts).
 * Authenticity of the sender comes from the feed entry's signature, not from
 * the box: this only provides confidentiality and integrity.
 */
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { rawX25519PublicKey, type BoxKeyPair } from './mesh-identity.js';
import { shownValue } from './shown-value.js';

export const PRIVATE_BOX_ALG = 'x25519-hkdf-sha256-chacha20poly1305';
const LABEL = 'apiary-private-v1';
export const MAX_RECIPIENTS = 64;
/** `ct` as base64url text; with 64 recipients the box still fits a 64 KiB feed entry (MAX_ENTRY_BYTES). */
export const MAX_CT_CHARS = 48 * 1024;
const TAG_BYTES = 16;
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
/** Largest plaintext whose `ct` (with its tag) stays within MAX_CT_CHARS. */
export const MAX_PLAINTEXT_BYTES = (MAX_CT_CHARS / 4) * 3 - TAG_BYTES;
/** HKDF info is capped at 1024 bytes by node:crypto; contexts are short names. */
const MAX_CONTEXT_BYTES = 256;
const NODE_ID_PATTERN = /^[a-z2-7]{12}$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

export interface WrappedKey {
  readonly nonce: string;
  readonly key: string;
}

export interface SealedBox {
  /** 1: context only; 2: context and binding in the AAD and key derivation. */
  readonly v: 1 | 2;
  readonly alg: typeof PRIVATE_BOX_ALG;
  readonly epk: string;
  readonly nonce: string;
  readonly ct: string;
  readonly recipients: Readonly<Record<string, WrappedKey>>;
}

export interface BoxRecipient {
  readonly nodeId: string;
  /** Raw X25519 public key, base64url (the `box` of its certificate). */
  readonly box: string;
}

function invalid(message: string, cause?: unknown): ApiaryError {
  return new ApiaryError(ErrorCodes.PRIVATE_BOX_INVALID, `not a valid private box: ${message}`, { cause });
}

/** Strict base64url: only the alphabet, no padding, canonical (no stray trailing bits), length in range. */
function decode(value: unknown, field: string, minBytes: number, maxBytes = minBytes): Buffer {
  if (typeof value !== 'string' || value.length > Math.ceil((maxBytes * 4) / 3) || !BASE64URL_PATTERN.test(value)) {
    throw invalid(`${field} is not base64url of at most ${maxBytes} bytes`);
  }
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.length < minBytes || bytes.length > maxBytes || bytes.toString('base64url') !== value) {
    throw invalid(`${field} is not base64url of ${minBytes === maxBytes ? `${minBytes}` : `${minBytes}-${maxBytes}`} bytes`);
  }
  return bytes;
}

function checkContext(context: string): void {
  if (typeof context !== 'string' || Buffer.byteLength(context) > MAX_CONTEXT_BYTES) throw invalid(`context is not a string of at most ${MAX_CONTEXT_BYTES} bytes`);
}

/** The context a box of version `v` is sealed under: v2 appends the binding (a different AAD and HKDF info than v1's). */
function boundContext(v: 1 | 2, context: string, binding: string | undefined): string {
  if (v === 1) return context;
  if (binding === undefined) throw invalid('a v2 box needs the binding it was sealed with');
  const bound = `${context}\nbound:${binding}`;
  checkContext(bound);
  return bound;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function onlyFields(o: Record<string, unknown>, fields: readonly string[], where: string): void {
  const extra = Object.keys(o).filter((k) => !fields.includes(k));
  if (extra.length > 0) throw invalid(`unknown field(s) ${extra.join(', ')} in ${where}`);
}

function contentAad(context: string, sortedIds: readonly string[]): Buffer {
  return Buffer.from(JSON.stringify([LABEL, context, sortedIds]), 'utf8');
}

function wrappingKey(privateKey: KeyObject, peerPublic: Buffer, epk: Buffer, recipientPublic: Buffer, context: string): Buffer {
  // As a JWK (a raw key): OpenSSL 3 decodes it about 10x faster than the same key as SPKI DER, and this runs per box sealed or opened.
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerPublic.toString('base64url') }, format: 'jwk' });
  const shared = diffieHellman({ privateKey, publicKey });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, recipientPublic]), `${LABEL}\n${context}`, KEY_BYTES));
}

/** ChaCha20-Poly1305; returns ciphertext || tag. */
function encrypt(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Throws on a bad tag; the partial output of update() is dropped then, never returned. */
function decrypt(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer {
  const body = sealed.subarray(0, sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad, { plaintextLength: body.length });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

/** Seals `plaintext`; with a `binding` (v2) it opens only where the same binding is given back. */
export function sealForRecipients(plaintext: Buffer, sender: BoxKeyPair & { nodeId: string }, recipients: readonly BoxRecipient[], baseContext: string, binding?: string): SealedBox {
  checkContext(baseContext);
  const v = binding === undefined ? 1 : 2;
  const context = boundContext(v, baseContext, binding);
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw invalid(`plaintext is ${plaintext.length} bytes, more than ${MAX_PLAINTEXT_BYTES}`);
  const boxes = new Map<string, Buffer>();
  for (const r of [{ nodeId: sender.nodeId, box: sender.publicKey }, ...recipients]) {
    if (!NODE_ID_PATTERN.test(r.nodeId)) throw invalid(`recipient ${JSON.stringify(r.nodeId)} is not a node id`);
    const key = decode(r.box, `box key of ${r.nodeId}`, KEY_BYTES);
    const known = boxes.get(r.nodeId);
    if (known && !known.equals(key)) throw invalid(`recipient ${r.nodeId} is listed with two different box keys`);
    boxes.set(r.nodeId, key);
  }
  if (boxes.size > MAX_RECIPIENTS) throw invalid(`${boxes.size} recipients (the sender included), more than ${MAX_RECIPIENTS}`);
  const ids = [...boxes.keys()].sort();
  const aad = contentAad(context, ids);
  const ephemeral = generateKeyPairSync('x25519').privateKey;
  const epk = Buffer.from(rawX25519PublicKey(ephemeral), 'base64url');
  const contentKey = ownContentKey(sender.privateKey, epk, context);
  const nonce = randomBytes(NONCE_BYTES);
  const ct = encrypt(contentKey, nonce, aad, plaintext);
  const wrapped: Record<string, WrappedKey> = {};
  for (const id of ids) {
    const recipientPublic = boxes.get(id) as Buffer;
    const wrapNonce = randomBytes(NONCE_BYTES);
    const key = encrypt(wrappingKey(ephemeral, recipientPublic, epk, recipientPublic, context), wrapNonce, aad, contentKey);
    wrapped[id] = { nonce: wrapNonce.toString('base64url'), key: key.toString('base64url') };
  }
  contentKey.fill(0);
  return { v, alg: PRIVATE_BOX_ALG, epk: epk.toString('base64url'), nonce: nonce.toString('base64url'), ct: ct.toString('base64url'), recipients: wrapped };
}

interface ParsedBox {
  readonly v: 1 | 2;
  readonly context: string;
  readonly epk: Buffer;
  readonly nonce: Buffer;
  readonly ct: Buffer;
  readonly ids: string[];
  readonly wraps: Map<string, { nonce: Buffer; key: Buffer }>;
}

/** Checks every field of a box (strict base64url, sizes, recipients) before any key is used on it. */
function parseBox(sealed: unknown, baseContext: string, binding: string | undefined): ParsedBox {
  checkContext(baseContext);
  if (!isPlainObject(sealed)) throw invalid('not a JSON object');
  onlyFields(sealed, ['v', 'alg', 'epk', 'nonce', 'ct', 'recipients'], 'the box');
  if (sealed.v !== 1 && sealed.v !== 2) throw invalid(`version ${shownValue(sealed.v)}, expected 1 or 2`);
  const context = boundContext(sealed.v, baseContext, binding);
  if (sealed.alg !== PRIVATE_BOX_ALG) throw invalid(`algorithm ${shownValue(sealed.alg)}, expected ${PRIVATE_BOX_ALG}`);
  const epk = decode(sealed.epk, 'epk', KEY_BYTES);
  const nonce = decode(sealed.nonce, 'nonce', NONCE_BYTES);
  if (typeof sealed.ct === 'string' && sealed.ct.length > MAX_CT_CHARS) throw invalid(`ct is ${sealed.ct.length} characters, more than ${MAX_CT_CHARS}`);
  const ct = decode(sealed.ct, 'ct', TAG_BYTES, (MAX_CT_CHARS / 4) * 3);
  if (!isPlainObject(sealed.recipients)) throw invalid('recipients is not an object');
  const ids = Object.keys(sealed.recipients);
  if (ids.length === 0 || ids.length > MAX_RECIPIENTS) throw invalid(`${ids.length} recipients, expected 1-${MAX_RECIPIENTS}`);
  const wraps = new Map<string, { nonce: Buffer; key: Buffer }>();
  for (const id of ids) {
    if (!NODE_ID_PATTERN.test(id)) throw invalid(`recipient ${JSON.stringify(id)} is not a node id`);
    const entry = sealed.recipients[id];
    if (!isPlainObject(entry)) throw invalid(`recipient ${id} is not an object`);
    onlyFields(entry, ['nonce', 'key'], `recipient ${id}`);
    wraps.set(id, { nonce: decode(entry.nonce, `nonce of ${id}`, NONCE_BYTES), key: decode(entry.key, `key of ${id}`, KEY_BYTES + TAG_BYTES) });
  }
  return { v: sealed.v, context, epk, nonce, ct, ids: ids.sort(), wraps };
}

/** Opens a box sealed for `me`; a v2 box needs the `binding` it was sealed with (a v1 box ignores it). */
export function openSealedBox(sealed: unknown, me: { nodeId: string; box: BoxKeyPair }, baseContext: string, binding?: string): Buffer {
  const box = parseBox(sealed, baseContext, binding);
  const mine = box.wraps.get(me.nodeId);
  if (!mine) throw new ApiaryError(ErrorCodes.PRIVATE_BOX_INVALID, `this node (${me.nodeId}) is not a recipient of the private box`);
  const aad = contentAad(box.context, box.ids);
  try {
    const contentKey = decrypt(wrappingKey(me.box.privateKey, box.epk, box.epk, Buffer.from(me.box.publicKey, 'base64url'), box.context), mine.nonce, aad, mine.key);
    const plaintext = decrypt(contentKey, box.nonce, aad, box.ct);
    contentKey.fill(0);
    return plaintext;
  } catch (err) {
    throw invalid('it fails authentication (tampered with, or sealed for another key, recipient list or context)', err);
  }
}

/**
 * Opens a box this node sealed with a derived content key (every box sealed
 * by this release): one HKDF and one ChaCha20-Poly1305, no X25519. Undefined
 * for a box it did not seal so (sealed by another node, or by an older
 * release with a random key); throws on a malformed box.
 */
export function openOwnBox(sealed: unknown, me: { nodeId: string; box: BoxKeyPair }, baseContext: string, binding?: string): Buffer | undefined {
  const box = parseBox(sealed, baseContext, binding);
  if (!box.wraps.has(me.nodeId)) return undefined;
  const key = ownContentKey(me.box.privateKey, box.epk, box.context);
  try {
    return decrypt(key, box.nonce, contentAad(box.context, box.ids), box.ct);
  } catch {
    return undefined;
  } finally {
    key.fill(0);
  }
}

/** Per box key pair: HKDF of its raw private key, the secret that own content keys derive from (kept in memory only). */
const ownSecrets = new WeakMap<KeyObject, Buffer>();

function ownContentKey(privateKey: KeyObject, epk: Buffer, context: string): Buffer {
  let secret = ownSecrets.get(privateKey);
  if (!secret) {
    const d = (privateKey.export({ format: 'jwk' }) as { d?: string }).d;
    if (typeof d !== 'string') throw invalid('the box private key cannot be read');
    secret = Buffer.from(hkdfSync('sha256', Buffer.from(d, 'base64url'), Buffer.alloc(0), `${LABEL}\nown-secret`, KEY_BYTES));
    ownSecrets.set(privateKey, secret);
  }
  return Buffer.from(hkdfSync('sha256', secret, epk, `${LABEL}\nown\n${context}`, KEY_BYTES));
}
