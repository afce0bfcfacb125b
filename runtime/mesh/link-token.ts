/**
 * How a node proves who it is when it connects to a neighbour's broker.
 * MQTT 3.1.1 has no challenge-response, so the CONNECT password is a fresh,
 * signed, single-use token:
 *   username = the client's node id
 *   password = JSON {cert, t, nonce, sig}
 *   sig      = Ed25519 by the node key over
 *              "apiary-link-v1\n" + JSON.stringify([brokerNodeId, clientNodeId, t, nonce])
 * It names the broker it is for (useless at any other node), is valid for
 * `maxSkewMs` around the broker's clock, and is remembered until it expires,
 * so a captured token cannot be replayed. TLS (broker.tls) keeps it secret.
 */
import { randomBytes } from 'node:crypto';
import { verifySignature } from '../identity/identity.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';

const CONTEXT = 'apiary-link-v1\n';
export const MAX_TOKEN_BYTES = 2048;

function signingBytes(broker: string, client: string, t: number, nonce: string): Buffer {
  return Buffer.from(CONTEXT + JSON.stringify([broker, client, t, nonce]), 'utf8');
}

export function makeLinkToken(identity: MeshIdentity, brokerNodeId: string, now: number): Buffer {
  const nonce = randomBytes(12).toString('base64url');
  const sig = identity.node.sign(signingBytes(brokerNodeId, identity.node.nodeId, now, nonce)).toString('base64url');
  return Buffer.from(JSON.stringify({ cert: identity.certificate, t: now, nonce, sig }), 'utf8');
}

export type TokenVerdict = { nodeId: string } | { refused: 'malformed' | 'expired' | 'replayed' | 'bad-signature' | 'untrusted' };

/** Single-use memory of accepted tokens, bounded: the oldest are forgotten first (they expire first too). */
export class ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxEntries = 10_000) {}

  /** True if the token was not seen before (and remembers it until `expiresAt`). */
  remember(key: string, expiresAt: number, now: number): boolean {
    for (const [k, exp] of this.seen) {
      if (exp > now && this.seen.size < this.maxEntries) break;
      this.seen.delete(k);
    }
    if (this.seen.has(key)) return false;
    this.seen.set(key, expiresAt);
    return true;
  }
}

export function verifyLinkToken(request: {
  username: string | undefined;
  password: Buffer | undefined;
  brokerNodeId: string;
  now: number;
  maxSkewMs: number;
  directory: MemberDirectory;
  replays: ReplayCache;
}): TokenVerdict {
  const { username, password, now, maxSkewMs } = request;
  if (username === undefined || password === undefined || password.length > MAX_TOKEN_BYTES) return { refused: 'malformed' };
  let token: { cert?: unknown; t?: unknown; nonce?: unknown; sig?: unknown };
  try {
    token = JSON.parse(password.toString('utf8')) as typeof token;
  } catch {
    return { refused: 'malformed' };
  }
  const { t, nonce, sig } = token;
  if (typeof t !== 'number' || typeof nonce !== 'string' || nonce.length > 32 || typeof sig !== 'string') return { refused: 'malformed' };
  if (Math.abs(t - now) > maxSkewMs) return { refused: 'expired' };
  let nodeId: string;
  try {
    nodeId = request.directory.learn(token.cert);
  } catch (err) {
    return { refused: (err as { code?: string }).code === 'APIARY_PEER_UNTRUSTED' ? 'untrusted' : 'malformed' };
  }
  const cert = request.directory.get(nodeId);
  if (nodeId !== username || !cert) return { refused: 'bad-signature' };
  if (!verifySignature(cert.node, signingBytes(request.brokerNodeId, nodeId, t, nonce), Buffer.from(sig, 'base64url'))) return { refused: 'bad-signature' };
  if (!request.replays.remember(sig, t + maxSkewMs, now)) return { refused: 'replayed' };
  return { nodeId };
}
