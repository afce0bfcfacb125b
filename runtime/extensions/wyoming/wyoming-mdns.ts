/**
 * Announces the Wyoming endpoint as `_wyoming._tcp` by DNS-SD over multicast
 * DNS (RFC 6762/6763), which is how Home Assistant's Wyoming integration
 * discovers voice services (its zeroconf matcher is `_wyoming._tcp.local.`).
 * Same library and socket set-up as the mesh's discovery
 * (runtime/mesh/mdns-discovery.ts): bonjour-service, IPv4, `interface` to pin
 * it to one address, a private port in tests.
 */
import type { Counters } from '../../counters.js';
import type { Logger } from '../../log.js';
import { closeBonjour, openBonjour, type BonjourLike } from '../../mesh/mdns-socket.js';

export const WYOMING_SERVICE_TYPE = 'wyoming';

export interface WyomingAdvertOptions {
  /** The instance name shown in Home Assistant's discovery. */
  readonly name: string;
  readonly port: number;
  readonly nodeId: string;
  readonly interface: string | undefined;
  readonly mdnsPort: number;
  readonly counters: Counters;
  readonly logger: Logger;
}

export class WyomingAdvert {
  private bonjour: BonjourLike | undefined;

  constructor(private readonly options: WyomingAdvertOptions) {}

  async start(): Promise<void> {
    const { options } = this;
    const bonjour = await openBonjour({
      port: options.mdnsPort,
      interface: options.interface,
      onError: (err) => {
        options.counters.increment('voice.wyoming.mdns_errors');
        options.logger.warn({ err: String(err) }, 'Wyoming mDNS error');
      },
    });
    this.bonjour = bonjour;
    bonjour.publish({
      name: options.name,
      type: WYOMING_SERVICE_TYPE,
      port: options.port,
      txt: { node: options.nodeId },
      probe: false, // the name embeds the node id
      disableIPv6: true,
    });
    options.logger.info({ name: options.name, port: options.port }, 'Wyoming endpoint announced over mDNS');
  }

  async stop(): Promise<void> {
    const bonjour = this.bonjour;
    this.bonjour = undefined;
    if (bonjour) await closeBonjour(bonjour);
  }
}
