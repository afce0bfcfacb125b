/**
 * Who may do what on this node's broker, once the mesh is on:
 * - anonymous clients only from loopback (the owner's own tools: Home
 *   Assistant on the board, mosquitto_sub) by default; broker.anonymous can
 *   forbid them, or allow them from anywhere on a LAN the owner trusts;
 * - a neighbour node authenticates with a link token (link-token.ts) bound
 *   to its connection, and is answered with a proof of our node key for that
 *   connection; with peersOverTlsOnly, only on the TLS listener;
 * - it may publish only under its own namespace <prefix>/<its id>/#, which
 *   is where its mesh messages to us go;
 * - it may subscribe to our state and info, its link proof, and to the
 *   streams the config grants it (mesh.grants), nothing else.
 */
import type { BrokerAccessPolicy, BrokerConnectRequest, BrokerPrincipal } from '../broker/broker-access.js';
import { isLoopbackAddress } from '../broker/broker-access.js';
import type { Counters } from '../counters.js';
import { isTlsSocket, serverBinding } from './link-binding.js';
import { linkProofTopic, makeLinkProof, verifyLinkToken } from './link-token.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import { ReplayCache } from './replay-cache.js';

/** Where a trusted node's last accepted link came from, and whether over TLS (dial-back never downgrades). */
export interface PeerAddress {
  readonly address: string;
  readonly tls: boolean;
}

export interface MeshAccessOptions {
  prefix: string;
  nodeId: string;
  directory: MemberDirectory;
  counters: Counters;
  anonymous: 'loopback' | 'never' | 'any';
  /** Node id -> stream names (readings, models, decisions) it may read. */
  grants: Readonly<Record<string, readonly string[]>>;
  maxSkewMs: number;
  /** Filled here: node id -> the address its last accepted link came from (for dial-back). */
  peerAddresses: Map<string, PeerAddress>;
  now: () => number;
  /** Signs the link proofs. */
  identity: MeshIdentity;
  /** Accepted tokens' (node, nonce), kept across restarts (loaded and flushed by the owner of it: createMesh, the mesh). */
  replays?: ReplayCache;
  /** Refuse link tokens that come on a plain (non-TLS) connection (broker.tls.peersOnly). */
  peersOverTlsOnly?: boolean;
  /** mesh.acceptRelayedPlainLinks: see verifyLinkToken. */
  acceptRelayedPlainLinks?: boolean;
}

export class MeshAccessPolicy implements BrokerAccessPolicy {
  readonly replays: ReplayCache;
  /** Publishes a link proof (retained) on our broker; set once the mesh runs on it. */
  publishProof: ((topic: string, proof: Buffer) => void) | undefined;

  constructor(private readonly options: MeshAccessOptions) {
    this.replays = options.replays ?? new ReplayCache({ counters: options.counters });
  }

  authenticate(request: BrokerConnectRequest): BrokerPrincipal | { refused: 'bad-credentials' | 'not-authorized' } {
    const { counters } = this.options;
    if (request.username === undefined && request.password === undefined) {
      const { anonymous } = this.options;
      if (anonymous === 'any' || (anonymous === 'loopback' && isLoopbackAddress(request.remoteAddress))) return { kind: 'local', id: request.clientId };
      counters.increment('mesh.rejected.link_anonymous');
      return { refused: 'not-authorized' };
    }
    const tls = request.socket !== undefined && isTlsSocket(request.socket);
    if (this.options.peersOverTlsOnly && !tls) {
      counters.increment('mesh.rejected.link_plain');
      return { refused: 'not-authorized' };
    }
    const bind = request.socket ? serverBinding(request.socket) : 'none';
    const verdict = verifyLinkToken({
      username: request.username,
      password: request.password,
      brokerNodeId: this.options.nodeId,
      bind,
      acceptRelayedPlain: this.options.acceptRelayedPlainLinks,
      now: this.options.now(),
      maxSkewMs: this.options.maxSkewMs,
      directory: this.options.directory,
      replays: this.replays,
    });
    if ('refused' in verdict) {
      counters.increment(`mesh.rejected.link_${verdict.refused}`);
      return { refused: verdict.refused === 'untrusted' ? 'not-authorized' : 'bad-credentials' };
    }
    if (request.remoteAddress) remember(this.options.peerAddresses, verdict.nodeId, { address: request.remoteAddress, tls });
    this.publishProof?.(linkProofTopic(this.options.prefix, this.options.nodeId, verdict.nodeId), makeLinkProof(this.options.identity, verdict.nodeId, verdict.nonce, verdict.bind));
    return { kind: 'peer', id: verdict.nodeId };
  }

  canPublish(principal: BrokerPrincipal, topic: string): boolean {
    if (principal.kind === 'local') return true;
    return topic.startsWith(`${this.options.prefix}/${principal.id}/`);
  }

  canSubscribe(principal: BrokerPrincipal, filter: string): boolean {
    if (principal.kind === 'local') return true;
    const base = `${this.options.prefix}/${this.options.nodeId}`;
    if (filter === `${base}/state` || filter === `${base}/info` || filter === `${base}/mesh/to/${principal.id}` || filter === `${base}/mesh/proof/${principal.id}`) return true;
    // The literal prefix pins the filter inside that stream's subtree, wildcards after it included.
    return (this.options.grants[principal.id] ?? []).some((stream) => filter.startsWith(`${base}/${stream}/`));
  }
}

/** Bounded, newest last: at most one address per trusted node that ever linked. */
function remember(addresses: Map<string, PeerAddress>, nodeId: string, peer: PeerAddress): void {
  addresses.delete(nodeId);
  addresses.set(nodeId, { address: peer.address.startsWith('::ffff:') ? peer.address.slice(7) : peer.address, tls: peer.tls });
  if (addresses.size > 1024) addresses.delete(addresses.keys().next().value as string);
}

/** Without a mesh: anonymous clients per broker.anonymous, and nobody else. */
export function anonymousPolicy(mode: 'loopback' | 'never' | 'any'): BrokerAccessPolicy {
  return {
    authenticate: ({ clientId, username, password, remoteAddress }) => {
      const anonymous = username === undefined && password === undefined;
      return anonymous && (mode === 'any' || (mode === 'loopback' && isLoopbackAddress(remoteAddress))) ? { kind: 'local', id: clientId } : { refused: 'not-authorized' };
    },
    canPublish: (principal) => principal.kind === 'local',
    canSubscribe: (principal) => principal.kind === 'local',
  };
}
