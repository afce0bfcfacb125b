/**
 * Revoking a node at run time: its owner signs a revocation of the node key,
 * any node of the mesh appends it to its feed (entry type "revocation"), and
 * it spreads like every entry: forwarded hop by hop and pulled again by
 * anti-entropy after a partition, with no coordinator. Each node that applies
 * it keeps it in members.json, so it survives restarts and feed retention.
 *
 * Signed bytes: "apiary-revocation-v1\n" + JSON.stringify([owner, node, at]).
 * Only the owner that certified the node (the pinned one) can revoke it.
 */
import { ApiaryError, ErrorCodes } from '../errors.js';
import { verifySignature, type NodeIdentity } from '../identity/identity.js';
import { certificateNodeId } from './certificate.js';
import { isCanonicalBase64url } from './strict-base64url.js';

export const REVOCATION_ENTRY_TYPE = 'revocation';
const CONTEXT = 'apiary-revocation-v1\n';

export interface Revocation {
  readonly v: 1;
  /** The owner key that signs it. */
  readonly owner: string;
  /** The node key revoked. */
  readonly node: string;
  /** ms since the epoch, by the owner's clock. */
  readonly at: number;
  readonly sig: string;
}

function signingBytes(r: { owner: string; node: string; at: number }): Buffer {
  return Buffer.from(CONTEXT + JSON.stringify([r.owner, r.node, r.at]), 'utf8');
}

export function signRevocation(owner: NodeIdentity, node: string, at: number): Revocation {
  return decodeRevocation({ v: 1, owner: owner.publicKey, node, at, sig: owner.sign(signingBytes({ owner: owner.publicKey, node, at })).toString('base64url') });
}

/** Checks shape and signature; throws CERTIFICATE_INVALID. */
export function decodeRevocation(raw: unknown): Revocation {
  const bad = (why: string) => new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `malformed revocation: ${why}`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('not a JSON object');
  const r = raw as Record<string, unknown>;
  if (Object.keys(r).some((k) => !['v', 'owner', 'node', 'at', 'sig'].includes(k))) throw bad('unknown fields');
  if (r.v !== 1) throw bad('version is not 1');
  if (!isCanonicalBase64url(r.owner, 32) || !isCanonicalBase64url(r.node, 32)) throw bad('owner or node is not a canonical 32-byte key');
  if (!Number.isSafeInteger(r.at) || (r.at as number) < 0) throw bad('at is not a time in ms');
  if (!isCanonicalBase64url(r.sig, 64)) throw bad('sig is not a canonical Ed25519 signature');
  const revocation: Revocation = { v: 1, owner: r.owner, node: r.node, at: r.at as number, sig: r.sig };
  if (!verifySignature(revocation.owner, signingBytes(revocation), Buffer.from(revocation.sig, 'base64url'))) throw bad('not signed by the owner it names');
  return revocation;
}

export function revokedNodeId(r: Revocation): string {
  return certificateNodeId(r);
}
