/**
 * How a node proves who it is when it connects to a neighbour's broker, and
 * how the neighbour proves it back. MQTT 3.1.1 has no challenge-response, so:
 *
 * Token (the CONNECT password), v2:
 *   username = the client's node id
 *   password = JSON {v: 2, cert, t, nonce, bind, sig}
 *   sig      = Ed25519 by the client's node key over
 *              "apiary-link-v2\n" + JSON.stringify([brokerNodeId, clientNodeId, t, nonce, bind])
 * It names the broker it is for, is bound to the connection it travels on
 * (`bind`, link-binding.ts: TLS exporter material, or the address reached),
 * is dated within maxSkewMs of the broker's clock, and its (node id, nonce)
 * is remembered (replay-cache.ts, across restarts) until it expires.
 * Decoding is strict: exact fields, canonical base64url of exact lengths.
 *
 * Proof (retained on <prefix>/<broker>/mesh/proof/<client>, which only that
 * client may read), sent by the broker for each accepted token:
 *   JSON {v: 2, cert, nonce, sig}, sig = Ed25519 by the BROKER's node key over
 *   "apiary-link-proof-v2\n" + JSON.stringify([brokerNodeId, clientNodeId, nonce, bind])
 * The dialling node counts the link as up only once the proof verifies: a
 * device without the node key (an MQTT broker announcing itself as that node)
 * can never give it.
 */
import { randomBytes } from 'node:crypto';
import { verifySignature } from '../identity/identity.js';
import { BINDING_PATTERN } from './link-binding.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import type { ReplayCache } from './replay-cache.js';
import { decodeCanonicalBase64url, isCanonicalBase64url } from './strict-base64url.js';

const CONTEXT = 'apiary-link-v2\n';
const PROOF_CONTEXT = 'apiary-link-proof-v2\n';
export const MAX_TOKEN_BYTES = 2048;
const NONCE_BYTES = 16;
const TOKEN_FIELDS = ['v', 'cert', 't', 'nonce', 'bind', 'sig'];

function signingBytes(broker: string, client: string, t: number, nonce: string, bind: string): Buffer {
  return Buffer.from(CONTEXT + JSON.stringify([broker, client, t, nonce, bind]), 'utf8');
}

function proofBytes(broker: string, client: string, nonce: string, bind: string): Buffer {
  return Buffer.from(PROOF_CONTEXT + JSON.stringify([broker, client, nonce, bind]), 'utf8');
}

export interface LinkToken {
  readonly password: Buffer;
  readonly nonce: string;
  readonly bind: string;
}

export function makeLinkToken(identity: MeshIdentity, brokerNodeId: string, now: number, bind: string): LinkToken {
  const nonce = randomBytes(NONCE_BYTES).toString('base64url');
  const sig = identity.node.sign(signingBytes(brokerNodeId, identity.node.nodeId, now, nonce, bind)).toString('base64url');
  return { password: Buffer.from(JSON.stringify({ v: 2, cert: identity.certificate, t: now, nonce, bind, sig }), 'utf8'), nonce, bind };
}

export type TokenRefusal = 'malformed' | 'expired' | 'replayed' | 'bad-signature' | 'untrusted' | 'unbound' | 'replay_budget';
export type TokenVerdict = { nodeId: string; nonce: string; bind: string } | { refused: TokenRefusal };

export function verifyLinkToken(request: {
  username: string | undefined;
  password: Buffer | undefined;
  brokerNodeId: string;
  /** The binding of the connection the token came on (serverBinding). */
  bind: string;
  /** Accept, on a plain connection, a token made for another address (a TCP proxy, port forwarding): mesh.acceptRelayedPlainLinks. */
  acceptRelayedPlain?: boolean;
  now: number;
  maxSkewMs: number;
  directory: MemberDirectory;
  replays: ReplayCache;
}): TokenVerdict {
  const { username, password, now, maxSkewMs } = request;
  if (username === undefined || password === undefined || password.length > MAX_TOKEN_BYTES) return { refused: 'malformed' };
  let token: Record<string, unknown>;
  try {
    token = JSON.parse(password.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { refused: 'malformed' };
  }
  if (token === null || typeof token !== 'object' || Array.isArray(token) || Object.keys(token).length !== TOKEN_FIELDS.length || !TOKEN_FIELDS.every((f) => Object.hasOwn(token, f))) {
    return { refused: 'malformed' };
  }
  const { v, t, nonce, bind } = token;
  const sig = decodeCanonicalBase64url(token.sig, 64);
  if (v !== 2 || !Number.isSafeInteger(t) || !isCanonicalBase64url(nonce, NONCE_BYTES) || typeof bind !== 'string' || !BINDING_PATTERN.test(bind) || !sig) return { refused: 'malformed' };
  if ((t as number) > now + maxSkewMs || (t as number) < now - maxSkewMs) return { refused: 'expired' };
  let nodeId: string;
  try {
    nodeId = request.directory.learn(token.cert);
  } catch (err) {
    return { refused: (err as { code?: string }).code === 'APIARY_PEER_UNTRUSTED' ? 'untrusted' : 'malformed' };
  }
  const cert = request.directory.get(nodeId);
  if (nodeId !== username || !cert) return { refused: 'bad-signature' };
  if (!verifySignature(cert.node, signingBytes(request.brokerNodeId, nodeId, t as number, nonce, bind), sig)) return { refused: 'bad-signature' };
  // Checked after the signature: a relayed token is genuine, but made for the connection to the relay.
  const relayedPlain = request.acceptRelayedPlain === true && bind.startsWith('tcp:') && request.bind.startsWith('tcp:');
  if (bind !== request.bind && !relayedPlain) return { refused: 'unbound' };
  const fresh = request.replays.remember(nodeId, nonce, (t as number) + maxSkewMs, now);
  if (fresh !== 'fresh') return { refused: fresh === 'replayed' ? 'replayed' : 'replay_budget' };
  return { nodeId, nonce, bind };
}

/** The broker's answer to an accepted token: proof that it holds its node key, for this connection. */
export function makeLinkProof(identity: MeshIdentity, clientNodeId: string, nonce: string, bind: string): Buffer {
  const sig = identity.node.sign(proofBytes(identity.node.nodeId, clientNodeId, nonce, bind)).toString('base64url');
  return Buffer.from(JSON.stringify({ v: 2, cert: identity.certificate, nonce, sig }), 'utf8');
}

/**
 * The dialling side's check of a proof: by `brokerNodeId`'s key (its
 * certificate trusted here), for our token's nonce and our connection's
 * binding. `learn` is the member directory's.
 */
export function verifyLinkProof(payload: Buffer, expected: { brokerNodeId: string; clientNodeId: string; nonce: string; bind: string }, learn: (cert: unknown) => string, keyOf: (nodeId: string) => string | undefined): 'proven' | 'stale' | 'invalid' {
  if (payload.length > MAX_TOKEN_BYTES) return 'invalid';
  let proof: Record<string, unknown>;
  try {
    proof = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    if (proof === null || typeof proof !== 'object' || proof.v !== 2) return 'invalid';
    if (learn(proof.cert) !== expected.brokerNodeId) return 'invalid';
  } catch {
    return 'invalid';
  }
  if (proof.nonce !== expected.nonce) return 'stale'; // a retained proof of an earlier connection
  const sig = decodeCanonicalBase64url(proof.sig, 64);
  const key = keyOf(expected.brokerNodeId);
  if (!sig || !key) return 'invalid';
  return verifySignature(key, proofBytes(expected.brokerNodeId, expected.clientNodeId, expected.nonce, expected.bind), sig) ? 'proven' : 'invalid';
}

/** Where a broker leaves its proof for a client: under the broker's namespace, readable by that client only (mesh-access.ts). */
export function linkProofTopic(prefix: string, brokerNodeId: string, clientNodeId: string): string {
  return `${prefix}/${brokerNodeId}/mesh/proof/${clientNodeId}`;
}
