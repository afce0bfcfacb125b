/**
 * What ties a link token to one connection, so that a token is useless on
 * any other (see docs/mesh.md, "Link authentication"):
 * - over TLS, 32 bytes of keying material exported from the TLS session
 *   (RFC 5705; RFC 8446 §7.5 for TLS 1.3), label "EXPORTER-apiary-link".
 *   Both ends derive the same bytes, and a TLS relay has two sessions with
 *   two different values: a token signed over one fails on the other.
 * - over plain TCP, the address and port the client's socket is connected to,
 *   which the broker sees as its own local address and port. A relay that
 *   terminates the connection (an MQTT broker or TCP proxy pretending to be a
 *   node) hands it to the real node from another connection, where the
 *   node's own address does not match. An IP-level relay (ARP spoofing with
 *   NAT) is not seen by either end: plain TCP cannot stop that, TLS can.
 */
import type net from 'node:net';
import { TLSSocket } from 'node:tls';

export const EXPORTER_LABEL = 'EXPORTER-apiary-link';
/** A binding, as signed in tokens and proofs. */
/** tcp: IPv4, or IPv6 with an optional zone (fe80::1%eth0). */
export const BINDING_PATTERN = /^(tls-exporter:[A-Za-z0-9_-]{43}|tcp:[0-9A-Za-z.:%_-]{2,64}:[0-9]{1,5})$/;

function plainAddress(address: string | undefined): string {
  return address?.startsWith('::ffff:') ? address.slice(7) : address ?? '?';
}

function exporter(socket: TLSSocket): string {
  return `tls-exporter:${socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('base64url')}`;
}

/** The client's binding: its connected socket's TLS session, or the address it reached. */
export function clientBinding(socket: net.Socket): string {
  return socket instanceof TLSSocket ? exporter(socket) : `tcp:${plainAddress(socket.remoteAddress)}:${socket.remotePort ?? 0}`;
}

/** The broker's binding of an accepted connection: the same value, from its side. */
export function serverBinding(socket: net.Socket): string {
  return socket instanceof TLSSocket ? exporter(socket) : `tcp:${plainAddress(socket.localAddress)}:${socket.localPort ?? 0}`;
}

export function isTlsSocket(socket: net.Socket): boolean {
  return socket instanceof TLSSocket;
}
