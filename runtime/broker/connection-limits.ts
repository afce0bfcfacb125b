/**
 * Bounds on what a socket can hold before it has authenticated (issue 10,
 * finding 9). A LAN-facing broker must not let a keyless device pin memory or
 * file descriptors: the number of open sockets is capped in total and per
 * remote address, and a socket over either cap is closed the moment it is
 * accepted, before any byte of it is buffered. (The size of the CONNECT
 * packet is capped by the wire guard, and a socket that does not complete its
 * CONNECT in time is closed by the connect timeout.)
 */
import type net from 'node:net';
import { checkWholeNumbers } from './client-budgets.js';

export interface ConnectionLimitOptions {
  /** Open sockets over all listeners, TLS handshakes in progress included. 0 = no limit. */
  maxConnections: number;
  /** Open sockets from one remote address (IPv4-mapped IPv6 folded into IPv4). 0 = no limit. */
  maxConnectionsPerAddress: number;
}

/** Defaults: enough for a board's own tools and a few dozen neighbours; a Raspberry Pi holds this many sockets easily. */
export const CONNECTION_LIMIT_DEFAULTS: ConnectionLimitOptions = { maxConnections: 256, maxConnectionsPerAddress: 32 };

/** The suffixes of the `broker.rejected.*` counters for a socket closed at accept. */
export type ConnectionRefusal = 'connections-total' | 'connections-per-address';

export class ConnectionLimits {
  private open = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: ConnectionLimitOptions) {
    checkWholeNumbers(limits);
  }

  /** Sockets open now. */
  get connections(): number {
    return this.open;
  }

  /**
   * Takes a slot for a socket just accepted, released when it closes; or
   * names the cap it would break (the caller closes it, no slot taken).
   */
  admit(socket: net.Socket): ConnectionRefusal | undefined {
    const address = addressKey(socket.remoteAddress);
    const fromAddress = this.perAddress.get(address) ?? 0;
    const { maxConnections, maxConnectionsPerAddress } = this.limits;
    if (maxConnections > 0 && this.open >= maxConnections) return 'connections-total';
    if (maxConnectionsPerAddress > 0 && fromAddress >= maxConnectionsPerAddress) return 'connections-per-address';
    this.open += 1;
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.release(address));
    return undefined;
  }

  private release(address: string): void {
    this.open -= 1;
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address); // the map holds only addresses with an open socket
  }
}

function addressKey(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
