/**
 * A shared-state operation: one signed "set map.key = value" by one node.
 * The shared document (shared-state-rules.ts) is the set of these, and
 * what a node reads is derived from them, so every edit names its author
 * and no node can speak for another: Yjs alone carries client ids that
 * anyone may pick, not identities.
 *
 * Wire format (a JSON string, the value of `ops[id]` in the Yjs document):
 *   {"v":1,"origin","key","map","k","value","hlc":{"l","c"},"sig"}
 * `value` is JSON *text*, exactly as signed; the signed bytes are
 *   "apiary-state-v1\n" + JSON.stringify([origin, key, map, k, value, l, c])
 * and the op's id is sha256(signed bytes || signature), base64url: the key
 * it is stored under, so an op cannot be stored under another's id.
 */
import { createHash } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { nodeIdFromPublicKey, verifySignature, type NodeIdentity } from '../identity/identity.js';
import { compareHlc, isHlcTimestamp, type HlcTimestamp } from './hybrid-logical-clock.js';
import { shownValue } from './shown-value.js';

export const STATE_OP_VERSION = 1;
const SIGNING_CONTEXT = 'apiary-state-v1\n';
/** Largest op: a member record or a threshold is a few hundred bytes. */
export const MAX_STATE_OP_BYTES = 16 * 1024;
export const MAP_NAME = /^[a-z][a-z0-9-]{0,31}$/;
export const MAX_KEY_CHARS = 128;
const NODE_ID_PATTERN = /^[a-z2-7]{12}$/;
const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
const FIELDS = ['v', 'origin', 'key', 'map', 'k', 'value', 'hlc', 'sig'];

export interface StateOp {
  readonly v: typeof STATE_OP_VERSION;
  /** The author's node id; origin = nodeIdFromPublicKey(key). */
  readonly origin: string;
  readonly key: string;
  readonly map: string;
  readonly k: string;
  /** JSON text of the value, as signed. */
  readonly value: string;
  readonly hlc: HlcTimestamp;
  readonly sig: string;
}

function signingBytes(op: Omit<StateOp, 'sig' | 'v'>): Buffer {
  return Buffer.from(SIGNING_CONTEXT + JSON.stringify([op.origin, op.key, op.map, op.k, op.value, op.hlc.l, op.hlc.c]), 'utf8');
}

export function stateOpId(op: StateOp): string {
  return createHash('sha256').update(signingBytes(op)).update(Buffer.from(op.sig, 'base64url')).digest('base64url');
}

export function signStateOp(identity: NodeIdentity, fields: { map: string; k: string; value: unknown; hlc: HlcTimestamp }): StateOp {
  const unsigned = {
    origin: identity.nodeId, key: identity.publicKey, map: fields.map, k: fields.k,
    value: JSON.stringify(fields.value), hlc: { l: fields.hlc.l, c: fields.hlc.c },
  };
  const op: StateOp = { v: STATE_OP_VERSION, ...unsigned, sig: identity.sign(signingBytes(unsigned)).toString('base64url') };
  return verifyStateOp(parseStateOp(JSON.stringify(op))); // refuse to emit what every peer would refuse
}

/** Parses an op's text and checks its shape (not its signature); throws SHARED_STATE_INVALID. */
export function parseStateOp(text: unknown): StateOp {
  if (typeof text !== 'string') throw invalid('an op is JSON text');
  if (text.length > MAX_STATE_OP_BYTES) throw invalid(`op of ${text.length} characters exceeds ${MAX_STATE_OP_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid('op is not JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('op is not a JSON object');
  const o = raw as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !FIELDS.includes(k));
  if (extra.length > 0) throw invalid(`unknown field(s) ${extra.join(', ')}`);
  if (o.v !== STATE_OP_VERSION) throw invalid(`version ${shownValue(o.v)}, expected ${STATE_OP_VERSION}`);
  if (typeof o.origin !== 'string' || !NODE_ID_PATTERN.test(o.origin)) throw invalid('origin is not a node id');
  if (typeof o.key !== 'string' || !KEY_PATTERN.test(o.key)) throw invalid('key is not a base64url Ed25519 public key');
  if (typeof o.map !== 'string' || !MAP_NAME.test(o.map)) throw invalid('map is not a lower-case name');
  if (typeof o.k !== 'string' || o.k.length === 0 || o.k.length > MAX_KEY_CHARS) throw invalid(`k is not a string of 1-${MAX_KEY_CHARS} characters`);
  if (typeof o.value !== 'string') throw invalid('value is not JSON text');
  try {
    JSON.parse(o.value);
  } catch {
    throw invalid('value is not valid JSON text');
  }
  if (!isHlcTimestamp(o.hlc)) throw invalid('hlc is not a hybrid-logical-clock timestamp');
  if (typeof o.sig !== 'string' || !SIGNATURE_PATTERN.test(o.sig)) throw invalid('sig is not a base64url Ed25519 signature');
  return { v: STATE_OP_VERSION, origin: o.origin, key: o.key, map: o.map, k: o.k, value: o.value, hlc: { l: o.hlc.l, c: o.hlc.c }, sig: o.sig };
}

/** Checks that the key is the origin's and the signature verifies; throws SHARED_STATE_INVALID. */
export function verifyStateOp(op: StateOp): StateOp {
  if (nodeIdFromPublicKey(Buffer.from(op.key, 'base64url')) !== op.origin) throw invalid(`op by ${op.origin}: the key is not the origin's`);
  if (!verifySignature(op.key, signingBytes(op), Buffer.from(op.sig, 'base64url'))) throw invalid(`op by ${op.origin}: the signature does not verify`);
  return op;
}

/**
 * The order of two ops on the same map.key: the later hybrid-logical time
 * wins, then the author's node id, then the op id; a total order, the same
 * on every node, so every node picks the same winner whatever it heard first.
 */
export function compareStateOps(a: { op: StateOp; id: string }, b: { op: StateOp; id: string }): number {
  return compareHlc(a.op.hlc, b.op.hlc) || a.op.origin.localeCompare(b.op.origin) || a.id.localeCompare(b.id);
}

function invalid(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.SHARED_STATE_INVALID, `malformed shared-state op: ${why}`);
}
