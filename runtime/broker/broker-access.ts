/**
 * Who may use the node's MQTT broker, and for what. The broker asks the
 * policy once per CONNECT and then for every PUBLISH and SUBSCRIBE from that
 * connection; the node's own in-process publish/subscribe never asks.
 */
import net from 'node:net';

/** local = an anonymous client on this machine; peer = an authenticated node (id = its node id). */
export interface BrokerPrincipal {
  readonly kind: 'local' | 'peer';
  readonly id: string;
}

export interface BrokerConnectRequest {
  /** As sent: may be '' (then, with clean session, the broker assigns one). */
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  /** Like '127.0.0.1', '::ffff:127.0.0.1' or '::1'; undefined when the socket has none. */
  remoteAddress: string | undefined;
  /** The client's socket (a TLSSocket on a TLS listener): link tokens are bound to it (mesh/link-binding.ts). */
  socket?: net.Socket;
}

/** CONNACK 0x02, 0x04 and 0x05 (MQTT 3.1.1 §3.2.2.3). */
export type BrokerRefusal = { refused: 'identifier' | 'bad-credentials' | 'not-authorized' };

export interface BrokerAccessPolicy {
  /** Called for every CONNECT. Returns the principal, or a refusal reason. */
  authenticate(request: BrokerConnectRequest): BrokerPrincipal | BrokerRefusal;
  canPublish(principal: BrokerPrincipal, topic: string): boolean;
  canSubscribe(principal: BrokerPrincipal, filter: string): boolean;
  /** Asked for every message about to be delivered to a client (retained ones too); omitted = whatever its subscriptions match. */
  canRead?(principal: BrokerPrincipal, topic: string): boolean;
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8 and ::1, also in IPv4-mapped form (::ffff:127.0.0.1), as Node reports dual-stack peers. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const family = net.isIP(address);
  if (family === 0) return false;
  return loopback.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The default: anyone on this machine may connect without credentials and
 * use any topic (Home Assistant on the same board, mosquitto_sub, `apiary
 * status`); every other machine is refused, since nothing here checks who it is.
 */
export function openLoopbackPolicy(): BrokerAccessPolicy {
  return {
    authenticate: ({ clientId, remoteAddress }) => (isLoopbackAddress(remoteAddress) ? { kind: 'local', id: clientId } : { refused: 'not-authorized' }),
    canPublish: (principal) => principal.kind === 'local',
    canSubscribe: (principal) => principal.kind === 'local',
  };
}
