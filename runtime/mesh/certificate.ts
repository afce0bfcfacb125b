/**
 * Owners and the certificates they give their nodes. Every node belongs to
 * an owner (a person or club); the owner's Ed25519 key signs a certificate
 * binding the node's signing key and its X25519 key (for private streams) to
 * that owner. A node trusts the owners its config lists (and its own), and
 * refuses any entry, link or message from a node whose certificate does not
 * verify, names an unknown owner, has expired, or whose node or owner key is
 * revoked.
 *
 * Format v2 (v1 had no proof of possession: any trusted owner could bind any
 * node id to a box key of its own, and so read what others sealed for it):
 *   self = Ed25519 by the NODE key over
 *          "apiary-node-self-v2\n" + JSON.stringify([node, box, owner, issuedAt])
 *          (the node says: this box key is mine, and this owner may certify me)
 *   sig  = Ed25519 by the OWNER key over
 *          "apiary-node-cert-v2\n" + JSON.stringify([node, box, owner, name, issuedAt, expiresAt, self])
 * v1 certificates are refused (see docs/mesh.md, "Node certificates (format v2)").
 */
import { createHash } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { nodeIdFromPublicKey, verifySignature, type NodeIdentity } from '../identity/identity.js';
import { decodeCanonicalBase64url, isCanonicalBase64url } from './strict-base64url.js';

const SIGNING_CONTEXT = 'apiary-node-cert-v2\n';
const SELF_CONTEXT = 'apiary-node-self-v2\n';
/** Certificates travel inside mesh messages; anything larger is not one. */
export const MAX_CERTIFICATE_BYTES = 1024;
/** Longest validity an owner may give: ten years. */
export const MAX_CERTIFICATE_VALIDITY_MS = 10 * 365 * 24 * 3600_000;
const FIELDS = ['v', 'node', 'box', 'owner', 'name', 'issuedAt', 'expiresAt', 'self', 'sig'];

export interface NodeCertificate {
  readonly v: 2;
  /** The node's raw Ed25519 public key (base64url): its feed and link signatures verify with it. */
  readonly node: string;
  /** The node's raw X25519 public key (base64url): private streams are sealed to it. */
  readonly box: string;
  /** The owner's raw Ed25519 public key (base64url). */
  readonly owner: string;
  /** The node's human name, for status and the demo. */
  readonly name: string;
  /** ms since the epoch, when the node self-signed (by its clock). */
  readonly issuedAt: number;
  /** ms since the epoch; the certificate is refused from then on. */
  readonly expiresAt: number;
  /** The node's self-signature (proof that it holds the node key and chose box and owner). */
  readonly self: string;
  readonly sig: string;
}

export type TrustVerdict = 'trusted' | 'unknown-owner' | 'revoked' | 'pin-mismatch' | 'expired';

export interface TrustPolicy {
  /** Owner public keys whose nodes this node accepts. */
  readonly owners: ReadonlySet<string>;
  /** Node or owner public keys that are refused whatever signed them. */
  readonly revoked: ReadonlySet<string>;
  /** Node id -> the only node key accepted for it (mesh.neighbours[].publicKey). */
  readonly pinned?: ReadonlyMap<string, string>;
}

/** What a node self-signs, so that its owner can certify it (`apiary id --json`). */
export interface SelfSignature {
  readonly node: string;
  readonly box: string;
  readonly owner: string;
  readonly issuedAt: number;
  readonly self: string;
}

function selfBytes(s: { node: string; box: string; owner: string; issuedAt: number }): Buffer {
  return Buffer.from(SELF_CONTEXT + JSON.stringify([s.node, s.box, s.owner, s.issuedAt]), 'utf8');
}

function signingBytes(c: Omit<NodeCertificate, 'v' | 'sig'>): Buffer {
  return Buffer.from(SIGNING_CONTEXT + JSON.stringify([c.node, c.box, c.owner, c.name, c.issuedAt, c.expiresAt, c.self]), 'utf8');
}

export function certificateNodeId(cert: { node: string }): string {
  return nodeIdFromPublicKey(Buffer.from(cert.node, 'base64url'));
}

/** The owner id: derived from the owner key like a node id. */
export function ownerId(ownerPublicKey: string): string {
  return nodeIdFromPublicKey(Buffer.from(ownerPublicKey, 'base64url'));
}

/** The node's half: it holds the node key, names its box key and the owner that may certify it. */
export function selfSign(node: NodeIdentity, fields: { box: string; owner: string; issuedAt: number }): SelfSignature {
  const unsigned = { node: node.publicKey, box: fields.box, owner: fields.owner, issuedAt: fields.issuedAt };
  return { ...unsigned, self: node.sign(selfBytes(unsigned)).toString('base64url') };
}

/** True if `self` is the node's signature over its box key, owner and time. */
export function verifySelfSignature(s: SelfSignature): boolean {
  const sig = decodeCanonicalBase64url(s.self, 64);
  return sig !== undefined && verifySignature(s.node, selfBytes(s), sig);
}

/** The owner's half: certifies a node that self-signed for this owner. Throws CERTIFICATE_INVALID when the self-signature does not verify. */
export function signCertificate(owner: NodeIdentity, fields: SelfSignature & { name: string; expiresAt: number }): NodeCertificate {
  const unsigned = { node: fields.node, box: fields.box, owner: owner.publicKey, name: fields.name, issuedAt: fields.issuedAt, expiresAt: fields.expiresAt, self: fields.self };
  return decodeCertificate({ v: 2, ...unsigned, sig: owner.sign(signingBytes(unsigned)).toString('base64url') });
}

/** Both halves at once, for a board that holds its owner's key. */
export function issueCertificate(owner: NodeIdentity, node: NodeIdentity, fields: { box: string; name: string; issuedAt: number; validForMs: number }): NodeCertificate {
  const self = selfSign(node, { box: fields.box, owner: owner.publicKey, issuedAt: fields.issuedAt });
  return signCertificate(owner, { ...self, name: fields.name, expiresAt: fields.issuedAt + fields.validForMs });
}

/**
 * Checks shape, the node's self-signature and the owner's signature of a
 * certificate from untrusted input; never throws anything but an
 * ApiaryError(CERTIFICATE_INVALID). Trust is a separate question (trustOf).
 */
export function decodeCertificate(raw: unknown): NodeCertificate {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('not a JSON object');
  const c = raw as Record<string, unknown>;
  const extra = Object.keys(c).filter((k) => !FIELDS.includes(k));
  if (extra.length > 0) throw invalid(`unknown field(s) ${extra.slice(0, 4).join(', ')}`);
  if (c.v === 1) throw invalid('format v1 (no proof of possession): the owner must sign it again (apiary owner sign --from <apiary id --json of the board>)');
  if (c.v !== 2) throw invalid(`version ${typeof c.v === 'number' ? c.v : typeof c.v}, expected 2`);
  for (const field of ['node', 'box', 'owner'] as const) {
    if (!isCanonicalBase64url(c[field], 32)) throw invalid(`${field} is not a canonical base64url 32-byte key`);
  }
  if (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > 64) throw invalid('name is not 1-64 characters');
  if (!Number.isSafeInteger(c.issuedAt) || (c.issuedAt as number) < 0) throw invalid('issuedAt is not a time in ms');
  const issuedAt = c.issuedAt as number;
  if (!Number.isSafeInteger(c.expiresAt) || (c.expiresAt as number) <= issuedAt || (c.expiresAt as number) - issuedAt > MAX_CERTIFICATE_VALIDITY_MS) {
    throw invalid('expiresAt is not a time after issuedAt and within ten years of it');
  }
  for (const field of ['self', 'sig'] as const) {
    if (!isCanonicalBase64url(c[field], 64)) throw invalid(`${field} is not a canonical base64url Ed25519 signature`);
  }
  const cert: NodeCertificate = {
    v: 2, node: c.node as string, box: c.box as string, owner: c.owner as string, name: c.name, issuedAt, expiresAt: c.expiresAt as number, self: c.self as string, sig: c.sig as string,
  };
  if (JSON.stringify(cert).length > MAX_CERTIFICATE_BYTES) throw invalid(`larger than ${MAX_CERTIFICATE_BYTES} bytes`);
  if (!verifySelfSignature(cert)) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `the certificate of node ${certificateNodeId(cert)} has no valid self-signature by that node: it does not prove the node chose this box key and owner`);
  }
  if (!verifySignature(cert.owner, signingBytes(cert), Buffer.from(cert.sig, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `the certificate of node ${certificateNodeId(cert)} is not signed by the owner it names`);
  }
  return cert;
}

/** `nodeId`, when the caller knows it, saves hashing the key (this runs for every entry received). */
export function trustOf(cert: NodeCertificate, policy: TrustPolicy, now: number, nodeId?: string): TrustVerdict {
  if (policy.revoked.has(cert.node) || policy.revoked.has(cert.owner)) return 'revoked';
  const pin = policy.pinned && policy.pinned.size > 0 ? policy.pinned.get(nodeId ?? certificateNodeId(cert)) : undefined;
  if (pin !== undefined && pin !== cert.node) return 'pin-mismatch';
  if (!policy.owners.has(cert.owner)) return 'unknown-owner';
  return cert.expiresAt <= now ? 'expired' : 'trusted';
}

/** A short fingerprint of a certificate, to tell two of the same node apart in logs. */
export function certificateFingerprint(cert: NodeCertificate): string {
  return createHash('sha256').update(signingBytes(cert)).digest('base64url').slice(0, 16);
}

function invalid(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `malformed node certificate: ${why}`);
}
