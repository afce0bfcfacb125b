/**
 * One bonjour-service instance as the node uses it (mesh discovery, the
 * Wyoming endpoint's announcement): IPv4, bound to all addresses but sending
 * and joining on `interface` only, on `port` (5353 except in tests); and a
 * close that says goodbye first, so others forget our services now rather
 * than when their records expire.
 */
export interface FoundService {
  port?: unknown;
  txt?: unknown;
  addresses?: unknown;
  referer?: { address?: unknown };
}

export interface BonjourLike {
  publish(config: { name: string; type: string; port: number; txt: Record<string, string>; probe: boolean; disableIPv6: boolean }): unknown;
  find(config: { type: string }, onUp: (service: FoundService) => void): { stop(): void };
  unpublishAll(callback: () => void): void;
  destroy(callback?: () => void): void;
}

export async function openBonjour(options: { port: number; interface: string | undefined; onError: (err: unknown) => void }): Promise<BonjourLike> {
  const { Bonjour } = await import('bonjour-service');
  // Options after the first are multicast-dns's: bind to all addresses (a socket bound to one
  // unicast address receives no multicast), send and join on `interface` only.
  const socketOptions = { port: options.port, interface: options.interface, bind: '0.0.0.0', reuseAddr: true };
  return new Bonjour(socketOptions, options.onError);
}

/** Goodbyes (TTL 0) for everything published, at most a second's wait, then the socket closed. */
export async function closeBonjour(bonjour: BonjourLike): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1_000);
    bonjour.unpublishAll(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
}
