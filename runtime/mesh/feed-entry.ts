/**
 * A feed entry: one signed, append-only record of a node's feed (the idea of
 * Secure Scuttlebutt and Hypercore). Each entry names its origin, its place
 * in the origin's feed (seq, from 1), the hash of the entry before it, a
 * hybrid-logical-clock time, a type and a body, and is signed with the
 * origin's Ed25519 key. (origin, seq) identifies an entry everywhere, so a
 * node applies each one exactly once; `prev` chains them, so a gap or a fork
 * is visible.
 *
 * Wire format: one JSON object,
 *   {"v":1,"origin","key","seq","prev","hlc":{"l","c"},"type","body","sig"}
 * where `body` is a JSON *string*: the exact bytes the origin signed, so no
 * re-serialisation can change a signature. The signed bytes are
 *   "apiary-feed-v1\n" + JSON.stringify([origin, key, seq, prev, l, c, type, body])
 * Every field is checked before the signature: size first, then shape.
 */
import { createHash } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { nodeIdFromPublicKey, verifySignature, type NodeIdentity } from '../identity/identity.js';
import { isHlcTimestamp, type HlcTimestamp } from './hybrid-logical-clock.js';
import { shownValue } from './shown-value.js';

export const FEED_FORMAT_VERSION = 1;
const SIGNING_CONTEXT = 'apiary-feed-v1\n';
/** Largest entry on the wire; bodies are readings, decisions and small state updates. */
export const MAX_ENTRY_BYTES = 64 * 1024;
const TYPE_PATTERN = /^[a-z][a-z0-9.-]{0,63}$/;
const NODE_ID_PATTERN = /^[a-z2-7]{12}$/;
const HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/; // sha256, base64url without padding
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/; // 64 bytes, base64url without padding

export interface FeedEntry {
  readonly v: typeof FEED_FORMAT_VERSION;
  readonly origin: string;
  /** The origin's raw Ed25519 public key, base64url; origin = nodeIdFromPublicKey(key). */
  readonly key: string;
  readonly seq: number;
  /** Hash of the previous entry of this feed (entryHash), or null for seq 1. */
  readonly prev: string | null;
  readonly hlc: HlcTimestamp;
  readonly type: string;
  /** JSON text of the body, exactly as signed. */
  readonly body: string;
  readonly sig: string;
}

function signingBytes(e: Omit<FeedEntry, 'sig' | 'v'>): Buffer {
  return Buffer.from(SIGNING_CONTEXT + JSON.stringify([e.origin, e.key, e.seq, e.prev, e.hlc.l, e.hlc.c, e.type, e.body]), 'utf8');
}

/** The id other entries use to point at this one: sha256 of its signed bytes and signature. */
export function entryHash(entry: FeedEntry): string {
  return createHash('sha256').update(signingBytes(entry)).update(Buffer.from(entry.sig, 'base64url')).digest('base64url');
}

/** Makes and signs the next entry of `identity`'s feed. */
export function signEntry(identity: NodeIdentity, fields: { seq: number; prev: string | null; hlc: HlcTimestamp; type: string; body: unknown }): FeedEntry {
  const unsigned = {
    origin: identity.nodeId,
    key: identity.publicKey,
    seq: fields.seq,
    prev: fields.prev,
    hlc: { l: fields.hlc.l, c: fields.hlc.c },
    type: fields.type,
    body: JSON.stringify(fields.body),
  };
  const entry: FeedEntry = { v: FEED_FORMAT_VERSION, ...unsigned, sig: identity.sign(signingBytes(unsigned)).toString('base64url') };
  // Refuse to emit what every peer would reject.
  return decodeEntry(encodeEntry(entry));
}

export function encodeEntry(entry: FeedEntry): Buffer {
  return Buffer.from(JSON.stringify(entry), 'utf8');
}

/**
 * Parses, checks and verifies an entry from untrusted bytes. Throws
 * FEED_ENTRY_INVALID for anything malformed and FEED_SIGNATURE_INVALID for a
 * signature (or key) that does not match: callers count the two apart.
 */
export function decodeEntry(bytes: Uint8Array): FeedEntry {
  return verifyEntry(parseEntry(bytes));
}

/** Parses and checks the shape of an entry from untrusted bytes, without verifying it: see decodeEntry. */
export function parseEntry(bytes: Uint8Array): FeedEntry {
  if (bytes.length > MAX_ENTRY_BYTES) throw invalid(`entry of ${bytes.length} bytes exceeds ${MAX_ENTRY_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid('entry is not JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('entry is not a JSON object');
  const e = raw as Record<string, unknown>;
  const extra = Object.keys(e).filter((k) => !['v', 'origin', 'key', 'seq', 'prev', 'hlc', 'type', 'body', 'sig'].includes(k));
  if (extra.length > 0) throw invalid(`unknown field(s) ${extra.join(', ')}`);
  if (e.v !== FEED_FORMAT_VERSION) throw invalid(`format version ${shownValue(e.v)}, expected ${FEED_FORMAT_VERSION}`);
  if (typeof e.origin !== 'string' || !NODE_ID_PATTERN.test(e.origin)) throw invalid('origin is not a node id');
  if (typeof e.key !== 'string' || !HASH_PATTERN.test(e.key)) throw invalid('key is not a base64url Ed25519 public key');
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) throw invalid('seq is not a whole number from 1');
  const seq = e.seq as number;
  if (seq === 1 ? e.prev !== null : typeof e.prev !== 'string' || !HASH_PATTERN.test(e.prev)) {
    throw invalid(seq === 1 ? 'the first entry of a feed must have prev null' : 'prev is not an entry hash');
  }
  if (!isHlcTimestamp(e.hlc)) throw invalid('hlc is not a hybrid-logical-clock timestamp');
  if (typeof e.type !== 'string' || !TYPE_PATTERN.test(e.type)) throw invalid('type is not a lower-case name');
  if (typeof e.body !== 'string') throw invalid('body is not JSON text');
  try {
    JSON.parse(e.body);
  } catch {
    throw invalid('body is not valid JSON text');
  }
  if (typeof e.sig !== 'string' || !SIGNATURE_PATTERN.test(e.sig)) throw invalid('sig is not a base64url Ed25519 signature');
  const entry: FeedEntry = {
    v: FEED_FORMAT_VERSION, origin: e.origin, key: e.key, seq, prev: e.prev as string | null,
    hlc: { l: e.hlc.l, c: e.hlc.c }, type: e.type, body: e.body, sig: e.sig,
  };
  return entry;
}

/** Signature checks made by this process: the costly step, measured by tests and benchmarks. */
let signatureChecks = 0;
export function entrySignatureChecks(): number {
  return signatureChecks;
}

/** Checks that a parsed entry's key is its origin's and its signature verifies; returns it. */
export function verifyEntry(entry: FeedEntry): FeedEntry {
  const { seq } = entry;
  signatureChecks += 1;
  if (nodeIdFromPublicKey(Buffer.from(entry.key, 'base64url')) !== entry.origin) {
    throw new ApiaryError(ErrorCodes.FEED_SIGNATURE_INVALID, `entry ${entry.origin}#${seq}: the key is not the origin's (origin ids derive from keys)`);
  }
  if (!verifySignature(entry.key, signingBytes(entry), Buffer.from(entry.sig, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.FEED_SIGNATURE_INVALID, `entry ${entry.origin}#${seq}: the signature does not verify`);
  }
  return entry;
}

function invalid(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.FEED_ENTRY_INVALID, `malformed feed entry: ${why}`);
}
