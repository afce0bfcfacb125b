/**
 * Node identities made in memory, certified by an owner key: what an owner
 * (honest or not) can mint in any number, without a data dir each.
 */
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { nodeIdFromPublicKey, type NodeIdentity } from '../../runtime/identity/identity.js';
import { issueCertificate, type NodeCertificate } from '../../runtime/mesh/certificate.js';

export function mintIdentity(): NodeIdentity {
  const { privateKey } = generateKeyPairSync('ed25519');
  // Raw key: the last 32 bytes of the SPKI DER encoding (RFC 8410, section 4).
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  return { nodeId: nodeIdFromPublicKey(raw), publicKey: raw.toString('base64url'), sign: (data) => sign(null, data, privateKey) };
}

/** A new node id with a certificate from `owner`. */
export function mintCertifiedNode(owner: NodeIdentity, name: string): { identity: NodeIdentity; cert: NodeCertificate } {
  const identity = mintIdentity();
  const box = mintIdentity().publicKey; // any 32-byte key: these nodes never open a private box
  return { identity, cert: issueCertificate(owner, identity, { box, name, issuedAt: Date.now(), validForMs: 365 * 86_400_000 }) };
}
