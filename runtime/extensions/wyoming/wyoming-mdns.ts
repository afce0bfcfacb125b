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

interface BonjourLike {
  publish(config: { name: string; type: string; port: number; txt: Record<string, string>; probe: boolean; disableIPv6: boolean }): unknown;
  unpublishAll(callback: () => void): void;
  destroy(callback?: () => void): void;
}

export class WyomingAdvert {
  private bonjour: BonjourLike | undefined;

  constructor(private readonly options: WyomingAdvertOptions) {}

  async start(): Promise<void> {
    const { Bonjour } = await import('bonjour-service');
    const { options } = this;
    const socketOptions = { port: options.mdnsPort, interface: options.interface, bind: '0.0.0.0', reuseAddr: true };
    const bonjour = new Bonjour(socketOptions, (err: unknown) => {
      options.counters.increment('voice.wyoming.mdns_errors');
      options.logger.warn({ err: String(err) }, 'Wyoming mDNS error');
    }) as unknown as BonjourLike;
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
    if (!bonjour) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1_000);
      bonjour.unpublishAll(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
  }
}
