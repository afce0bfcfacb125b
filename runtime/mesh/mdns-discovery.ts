/**
 * Finds neighbours on the LAN by multicast DNS (RFC 6762) and DNS-SD (RFC
 * 6763), with bonjour-service: each node announces a `_apiary-mesh._tcp`
 * service whose SRV record gives its broker port and whose TXT record gives
 * its node id and owner key. A node found this way is only a candidate: the
 * link is made only to owners this node trusts, and the link itself proves
 * who is there (certificate in hello, signed link token). A TXT record is
 * untrusted input: anything malformed is counted and ignored.
 *
 * Off by default (mesh.discovery.mdns): multicast reaches every machine on
 * the LAN, which the owner should choose. `interface` pins it to one address
 * (tests use 127.0.0.1 and a private port, so nothing leaves loopback).
 */
import net from 'node:net';
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';
import { closeBonjour, openBonjour, type BonjourLike, type FoundService } from './mdns-socket.js';

export const MDNS_SERVICE_TYPE = 'apiary-mesh';
const NODE_ID = /^[a-z2-7]{12}$/;
const PUBLIC_KEY = /^[A-Za-z0-9_-]{43}$/;

export interface DiscoveredPeer {
  readonly nodeId: string;
  /** The owner key the node announced (checked again, signed, when the link comes up). */
  readonly owner: string;
  /** Its broker, at the address the announcement came from. */
  readonly url: string;
}

export interface MdnsDiscoveryOptions {
  nodeId: string;
  owner: string;
  /** This node's broker port and whether it speaks TLS, as announced. */
  brokerPort: number;
  tls: boolean;
  /** IPv4 address of the interface to announce and listen on; default: all. */
  interface: string | undefined;
  /** UDP port of mDNS; 5353 except in tests. */
  mdnsPort: number;
  onFound: (peer: DiscoveredPeer) => void;
  counters: Counters;
  logger: Logger;
}

export class MdnsDiscovery {
  private bonjour: BonjourLike | undefined;
  private browser: { stop(): void } | undefined;

  constructor(private readonly options: MdnsDiscoveryOptions) {}

  async start(): Promise<void> {
    const { options } = this;
    const bonjour = await openBonjour({
      port: options.mdnsPort,
      interface: options.interface,
      onError: (err) => {
        options.counters.increment('mesh.discovery.errors');
        options.logger.warn({ err: String(err) }, 'mDNS discovery error');
      },
    });
    this.bonjour = bonjour;
    bonjour.publish({
      name: `apiary-${options.nodeId}`,
      type: MDNS_SERVICE_TYPE,
      port: options.brokerPort,
      txt: { v: '1', id: options.nodeId, owner: options.owner, tls: options.tls ? '1' : '0' },
      probe: false, // the name embeds the node id, so it cannot clash
      disableIPv6: true,
    });
    this.browser = bonjour.find({ type: MDNS_SERVICE_TYPE }, (service) => this.found(service));
    options.logger.info({ interface: options.interface ?? 'all', port: options.mdnsPort }, 'mDNS discovery on');
  }

  async stop(): Promise<void> {
    const bonjour = this.bonjour;
    this.bonjour = undefined;
    this.browser?.stop();
    this.browser = undefined;
    if (bonjour) await closeBonjour(bonjour);
  }

  private found(service: FoundService): void {
    const { counters, nodeId } = this.options;
    const peer = parseService(service);
    if (!peer) {
      counters.increment('mesh.discovery.rejected');
      return;
    }
    if (peer.nodeId === nodeId) return;
    counters.increment('mesh.discovery.found');
    this.options.onFound(peer);
  }
}

/** A discovered peer from an mDNS answer, or undefined when any part of it is malformed. */
export function parseService(service: FoundService): DiscoveredPeer | undefined {
  const txt = service.txt;
  if (txt === null || typeof txt !== 'object') return undefined;
  const { v, id, owner, tls } = txt as Record<string, unknown>;
  if (v !== '1' || typeof id !== 'string' || !NODE_ID.test(id) || typeof owner !== 'string' || !PUBLIC_KEY.test(owner)) return undefined;
  if (tls !== '0' && tls !== '1') return undefined;
  const port = service.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  // The address the announcement came from is one that routes back to it; the A records are the fallback.
  const candidates: unknown[] = [service.referer?.address, ...(Array.isArray(service.addresses) ? (service.addresses as unknown[]) : [])];
  const address = candidates.find((a): a is string => typeof a === 'string' && net.isIPv4(a));
  if (!address) return undefined;
  return { nodeId: id, owner, url: `${tls === '1' ? 'mqtts' : 'mqtt'}://${address}:${port}` };
}

/**
 * Every address a node id was announced at (a device may announce a trusted
 * node's id at its own address). A link to an address that failed to prove
 * the node's key is dropped, the address shunned for `shunMs`, and the next
 * announced address tried. Bounded: 1024 node ids, 4 addresses each.
 */
export class DiscoveryCandidates {
  private readonly urls = new Map<string, string[]>();
  private readonly shunned = new Map<string, number>();

  constructor(private readonly shunMs = 10 * 60_000) {}

  add(peer: DiscoveredPeer): void {
    const list = this.urls.get(peer.nodeId) ?? [];
    if (list.includes(peer.url)) return;
    if (!this.urls.has(peer.nodeId) && this.urls.size >= 1024) this.urls.delete(this.urls.keys().next().value as string);
    this.urls.set(peer.nodeId, [...list, peer.url].slice(-4));
  }

  isShunned(url: string, now: number): boolean {
    const until = this.shunned.get(url);
    if (until !== undefined && until <= now) this.shunned.delete(url);
    return until !== undefined && until > now;
  }

  shun(url: string, now: number): void {
    if (this.shunned.size >= 4096) this.shunned.delete(this.shunned.keys().next().value as string);
    this.shunned.set(url, now + this.shunMs);
  }

  /** An announced address of `nodeId` not shunned now, if any. */
  next(nodeId: string, now: number): string | undefined {
    return (this.urls.get(nodeId) ?? []).find((url) => !this.isShunned(url, now));
  }
}
