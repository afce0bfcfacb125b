/**
 * Who may do what on this node's broker, once the mesh is on:
 * - anonymous clients only from loopback (the owner's own tools: Home
 *   Assistant on the board, mosquitto_sub) by default; broker.anonymous can
 *   forbid them, or allow them from anywhere on a LAN the owner trusts;
 * - a neighbour node authenticates with a link token (link-token.ts) and may
 *   publish only under its own namespace <prefix>/<its id>/#, which is where
 *   its mesh messages to us go;
 * - it may subscribe to our state and info, and to the streams the config
 *   grants it (mesh.grants), nothing else.
 */
import type { BrokerAccessPolicy, BrokerPrincipal } from '../broker/broker-access.js';
import { isLoopbackAddress } from '../broker/broker-access.js';
import type { Counters } from '../counters.js';
import { ReplayCache, verifyLinkToken } from './link-token.js';
import type { MemberDirectory } from './member-directory.js';

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
  peerAddresses: Map<string, string>;
  now: () => number;
}

export class MeshAccessPolicy implements BrokerAccessPolicy {
  private readonly replays = new ReplayCache();

  constructor(private readonly options: MeshAccessOptions) {}

  authenticate(request: { clientId: string; username: string | undefined; password: Buffer | undefined; remoteAddress: string | undefined }): BrokerPrincipal | { refused: 'bad-credentials' | 'not-authorized' } {
    const { counters } = this.options;
    if (request.username === undefined && request.password === undefined) {
      const { anonymous } = this.options;
      if (anonymous === 'any' || (anonymous === 'loopback' && isLoopbackAddress(request.remoteAddress))) return { kind: 'local', id: request.clientId };
      counters.increment('mesh.rejected.link_anonymous');
      return { refused: 'not-authorized' };
    }
    const verdict = verifyLinkToken({
      username: request.username,
      password: request.password,
      brokerNodeId: this.options.nodeId,
      now: this.options.now(),
      maxSkewMs: this.options.maxSkewMs,
      directory: this.options.directory,
      replays: this.replays,
    });
    if ('refused' in verdict) {
      counters.increment(`mesh.rejected.link_${verdict.refused}`);
      return { refused: verdict.refused === 'untrusted' ? 'not-authorized' : 'bad-credentials' };
    }
    if (request.remoteAddress) remember(this.options.peerAddresses, verdict.nodeId, request.remoteAddress);
    return { kind: 'peer', id: verdict.nodeId };
  }

  canPublish(principal: BrokerPrincipal, topic: string): boolean {
    if (principal.kind === 'local') return true;
    return topic.startsWith(`${this.options.prefix}/${principal.id}/`);
  }

  canSubscribe(principal: BrokerPrincipal, filter: string): boolean {
    if (principal.kind === 'local') return true;
    const base = `${this.options.prefix}/${this.options.nodeId}`;
    if (filter === `${base}/state` || filter === `${base}/info` || filter === `${base}/mesh/to/${principal.id}`) return true;
    // The literal prefix pins the filter inside that stream's subtree, wildcards after it included.
    return (this.options.grants[principal.id] ?? []).some((stream) => filter.startsWith(`${base}/${stream}/`));
  }
}

/** Bounded, newest last: at most one address per trusted node that ever linked. */
function remember(addresses: Map<string, string>, nodeId: string, address: string): void {
  addresses.delete(nodeId);
  addresses.set(nodeId, address.startsWith('::ffff:') ? address.slice(7) : address);
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
