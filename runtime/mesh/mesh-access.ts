/**
 * Who may do what on this node's broker, once the mesh is on:
 * - anonymous clients only from loopback (the owner's own tools: Home
 *   Assistant on the board, mosquitto_sub) by default; broker.anonymous can
 *   forbid them, or allow them from anywhere on a LAN the owner trusts;
 * - a neighbour node authenticates with a link token (link-token.ts) bound
 *   to its connection, and is answered with a proof of our node key for that
 *   connection; with peersOverTlsOnly, only on the TLS listener;
 * - it connects with its own client id `apiary-<its id>` and no other: nobody
 *   else may use that id, so no client can take over its link or its session
 *   (MQTT 3.1.4-2 would otherwise close the real link);
 * - it may publish only its mesh messages to us, <prefix>/<its id>/mesh/to/<our id>,
 *   and its liveness, <prefix>/<its id>/state: the broker thereby binds every
 *   mesh message to the node that authenticated (the mesh reads the sender
 *   from the topic);
 * - it may subscribe to our state and info, its link proof, and to the
 *   streams the config grants it (mesh.grants), nothing else;
 * - local clients are ruled by LocalTopicRules (topic-acl.ts): never on mesh
 *   topics or in other nodes' namespaces.
 */
import type { BrokerAccessPolicy, BrokerConnectRequest, BrokerPrincipal, BrokerRefusal } from '../broker/broker-access.js';
import { isLoopbackAddress } from '../broker/broker-access.js';
import type { LocalTopicRules } from '../broker/topic-acl.js';
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
  /** What local clients may publish, subscribe and read (never mesh topics or other nodes' namespaces). */
  localTopics: LocalTopicRules;
}

/** The client id a node links with (peer-link.ts), reserved for it on every broker. */
export const peerClientId = (nodeId: string): string => `apiary-${nodeId}`;
/** Client ids shaped like a node's link id (`apiary-` and a 12-character node id). */
const PEER_CLIENT_ID = /^apiary-[a-z2-7]{12}$/;

export class MeshAccessPolicy implements BrokerAccessPolicy {
  readonly replays: ReplayCache;
  /** Publishes a link proof (retained) on our broker; set once the mesh runs on it. */
  publishProof: ((topic: string, proof: Buffer) => void) | undefined;

  constructor(private readonly options: MeshAccessOptions) {
    this.replays = options.replays ?? new ReplayCache({ counters: options.counters });
  }

  authenticate(request: BrokerConnectRequest): BrokerPrincipal | BrokerRefusal {
    const { counters } = this.options;
    if (request.username === undefined && request.password === undefined) {
      const { anonymous } = this.options;
      if (anonymous === 'any' || (anonymous === 'loopback' && isLoopbackAddress(request.remoteAddress))) {
        // A node's link id, from a client that did not authenticate as that node: refused, so the real link is never closed for it.
        if (PEER_CLIENT_ID.test(request.clientId)) return this.refuseClientId();
        return { kind: 'local', id: request.clientId };
      }
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
    // Checked after the token, so a refused id never reveals whether a token would have been accepted.
    if (request.clientId !== peerClientId(verdict.nodeId)) return this.refuseClientId();
    if (request.remoteAddress) remember(this.options.peerAddresses, verdict.nodeId, { address: request.remoteAddress, tls });
    this.publishProof?.(linkProofTopic(this.options.prefix, this.options.nodeId, verdict.nodeId), makeLinkProof(this.options.identity, verdict.nodeId, verdict.nonce, verdict.bind));
    return { kind: 'peer', id: verdict.nodeId };
  }

  canPublish(principal: BrokerPrincipal, topic: string): boolean {
    const { prefix, nodeId, localTopics } = this.options;
    if (principal.kind === 'local') return localTopics.mayPublish(principal.id, topic);
    return topic === `${prefix}/${principal.id}/mesh/to/${nodeId}` || topic === `${prefix}/${principal.id}/state`;
  }

  canSubscribe(principal: BrokerPrincipal, filter: string): boolean {
    if (principal.kind === 'local') return this.options.localTopics.maySubscribe(principal.id, filter);
    const base = `${this.options.prefix}/${this.options.nodeId}`;
    if (filter === `${base}/state` || filter === `${base}/info` || filter === `${base}/mesh/to/${principal.id}` || filter === `${base}/mesh/proof/${principal.id}`) return true;
    // The literal prefix pins the filter inside that stream's subtree, wildcards after it included.
    return (this.options.grants[principal.id] ?? []).some((stream) => filter.startsWith(`${base}/${stream}/`));
  }

  /** A peer reads what its (narrow) subscriptions match; a local client never a mesh message. */
  canRead(principal: BrokerPrincipal, topic: string): boolean {
    return principal.kind === 'peer' || this.options.localTopics.mayRead(principal.id, topic);
  }

  /** CONNACK 0x02 (identifier rejected), counted here and by the broker (broker.rejected.identifier). */
  private refuseClientId(): BrokerRefusal {
    this.options.counters.increment('mesh.rejected.link_client_id');
    return { refused: 'identifier' };
  }
}

/** Bounded, newest last: at most one address per trusted node that ever linked. */
function remember(addresses: Map<string, PeerAddress>, nodeId: string, peer: PeerAddress): void {
  addresses.delete(nodeId);
  addresses.set(nodeId, { address: peer.address.startsWith('::ffff:') ? peer.address.slice(7) : peer.address, tls: peer.tls });
  if (addresses.size > 1024) addresses.delete(addresses.keys().next().value as string);
}

/** Without a mesh: anonymous clients per broker.anonymous, ruled by `localTopics`; nobody else. */
export function anonymousPolicy(mode: 'loopback' | 'never' | 'any', localTopics: LocalTopicRules): BrokerAccessPolicy {
  return {
    authenticate: ({ clientId, username, password, remoteAddress }) => {
      const anonymous = username === undefined && password === undefined;
      return anonymous && (mode === 'any' || (mode === 'loopback' && isLoopbackAddress(remoteAddress))) ? { kind: 'local', id: clientId } : { refused: 'not-authorized' };
    },
    canPublish: (principal, topic) => principal.kind === 'local' && localTopics.mayPublish(principal.id, topic),
    canSubscribe: (principal, filter) => principal.kind === 'local' && localTopics.maySubscribe(principal.id, filter),
    canRead: (principal, topic) => principal.kind === 'local' && localTopics.mayRead(principal.id, topic),
  };
}
