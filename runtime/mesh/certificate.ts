/**
 * Owners and the certificates they give their nodes. Every node belongs to
 * an owner (a person or club); the owner's Ed25519 key signs a certificate
 * binding the node's signing key and its X25519 key (for private streams) to
 * that owner. A node trusts the owners its config lists (and its own), and
 * refuses any entry, link or message from a node whose certificate does not
 * verify, names an unknown owner, or whose node or owner key is revoked.
 *
 * Signed bytes: "apiary-node-cert-v1\n" + JSON.stringify([node, box, owner, name, issuedAt]).
 */
import { createHash } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { nodeIdFromPublicKey, verifySignature, type NodeIdentity } from '../identity/identity.js';

const SIGNING_CONTEXT = 'apiary-node-cert-v1\n';
const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/; // 32 raw bytes, base64url without padding
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
/** Certificates travel inside mesh messages; anything larger is not one. */
export const MAX_CERTIFICATE_BYTES = 1024;

export interface NodeCertificate {
  readonly v: 1;
  /** The node's raw Ed25519 public key (base64url): its feed and link signatures verify with it. */
  readonly node: string;
  /** The node's raw X25519 public key (base64url): private streams are sealed to it. */
  readonly box: string;
  /** The owner's raw Ed25519 public key (base64url). */
  readonly owner: string;
  /** The node's human name, for status and the demo. */
  readonly name: string;
  /** ms since the epoch, by the owner's clock. */
  readonly issuedAt: number;
  readonly sig: string;
}

export type TrustVerdict = 'trusted' | 'unknown-owner' | 'revoked' | 'pin-mismatch';

export interface TrustPolicy {
  /** Owner public keys whose nodes this node accepts. */
  readonly owners: ReadonlySet<string>;
  /** Node or owner public keys that are refused whatever signed them. */
  readonly revoked: ReadonlySet<string>;
  /** Node id -> the only node key accepted for it (mesh.neighbours[].publicKey). */
  readonly pinned?: ReadonlyMap<string, string>;
}

function signingBytes(c: Omit<NodeCertificate, 'v' | 'sig'>): Buffer {
  return Buffer.from(SIGNING_CONTEXT + JSON.stringify([c.node, c.box, c.owner, c.name, c.issuedAt]), 'utf8');
}

export function certificateNodeId(cert: NodeCertificate): string {
  return nodeIdFromPublicKey(Buffer.from(cert.node, 'base64url'));
}

/** The owner id: derived from the owner key like a node id. */
export function ownerId(ownerPublicKey: string): string {
  return nodeIdFromPublicKey(Buffer.from(ownerPublicKey, 'base64url'));
}

export function signCertificate(owner: NodeIdentity, fields: { node: string; box: string; name: string; issuedAt: number }): NodeCertificate {
  const unsigned = { node: fields.node, box: fields.box, owner: owner.publicKey, name: fields.name, issuedAt: fields.issuedAt };
  return decodeCertificate({ v: 1, ...unsigned, sig: owner.sign(signingBytes(unsigned)).toString('base64url') });
}

/** Checks shape and the owner's signature of a certificate from untrusted input. Trust is a separate question (trustOf). */
export function decodeCertificate(raw: unknown): NodeCertificate {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('not a JSON object');
  if (JSON.stringify(raw).length > MAX_CERTIFICATE_BYTES) throw invalid(`larger than ${MAX_CERTIFICATE_BYTES} bytes`);
  const c = raw as Record<string, unknown>;
  const extra = Object.keys(c).filter((k) => !['v', 'node', 'box', 'owner', 'name', 'issuedAt', 'sig'].includes(k));
  if (extra.length > 0) throw invalid(`unknown field(s) ${extra.join(', ')}`);
  if (c.v !== 1) throw invalid(`version ${String(c.v)}, expected 1`);
  for (const field of ['node', 'box', 'owner'] as const) {
    if (typeof c[field] !== 'string' || !KEY_PATTERN.test(c[field])) throw invalid(`${field} is not a base64url 32-byte key`);
  }
  if (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > 64) throw invalid('name is not 1-64 characters');
  if (!Number.isSafeInteger(c.issuedAt) || (c.issuedAt as number) < 0) throw invalid('issuedAt is not a time in ms');
  if (typeof c.sig !== 'string' || !SIGNATURE_PATTERN.test(c.sig)) throw invalid('sig is not a base64url Ed25519 signature');
  const cert: NodeCertificate = {
    v: 1, node: c.node as string, box: c.box as string, owner: c.owner as string, name: c.name, issuedAt: c.issuedAt as number, sig: c.sig,
  };
  if (!verifySignature(cert.owner, signingBytes(cert), Buffer.from(cert.sig, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `the certificate of node ${certificateNodeId(cert)} is not signed by the owner it names`);
  }
  return cert;
}

export function trustOf(cert: NodeCertificate, policy: TrustPolicy): TrustVerdict {
  if (policy.revoked.has(cert.node) || policy.revoked.has(cert.owner)) return 'revoked';
  const pin = policy.pinned?.get(certificateNodeId(cert));
  if (pin !== undefined && pin !== cert.node) return 'pin-mismatch';
  return policy.owners.has(cert.owner) ? 'trusted' : 'unknown-owner';
}

/** A short fingerprint of a certificate, to tell two of the same node apart in logs. */
export function certificateFingerprint(cert: NodeCertificate): string {
  return createHash('sha256').update(signingBytes(cert)).digest('base64url').slice(0, 16);
}

function invalid(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `malformed node certificate: ${why}`);
}
