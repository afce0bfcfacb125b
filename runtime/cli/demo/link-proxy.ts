/**
 * A fault-injecting TCP proxy (the demo's link cutter, and the tests'): it forwards connections to
 * a target port and can cut the link (drop every open connection, refuse new
 * ones) and heal it, like a Wi-Fi link in a field.
 */
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private isCut = false;
  private held = false;
  port = 0;
  /** Bytes forwarded in each direction since start (client->target, target->client). */
  readonly bytes = { up: 0, down: 0 };

  private targetPort: number | undefined;
  private readonly waiting: (() => void)[] = [];

  /** Without `targetPort`, connections wait (paused) until setTarget(): a proxy can be handed out before its target listens. */
  constructor(targetPort?: number, private readonly host = '127.0.0.1') {
    this.targetPort = targetPort;
  }

  /** Where connections go; those that arrived before are forwarded now. */
  setTarget(port: number): void {
    this.targetPort = port;
    for (const go of this.waiting.splice(0)) go();
  }

  async start(): Promise<number> {
    const server = net.createServer((client) => {
      if (this.targetPort === undefined) {
        client.pause();
        const forward = () => this.forward(client);
        this.waiting.push(forward);
        client.once('close', () => { const i = this.waiting.indexOf(forward); if (i >= 0) this.waiting.splice(i, 1); });
        client.on('error', () => client.destroy()); // a reset while waiting is no crash
        return;
      }
      this.forward(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, this.host, resolve));
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private forward(client: net.Socket): void {
    if (this.isCut || client.destroyed || this.targetPort === undefined) {
      client.destroy();
      return;
    }
    const target = net.connect(this.targetPort, this.host);
    const pair: [net.Socket, net.Socket] = [client, target];
    this.pairs.add(pair);
    const close = () => {
      client.destroy();
      target.destroy();
      this.pairs.delete(pair);
    };
    client.on('data', (d: Buffer) => { this.bytes.up += d.length; });
    target.on('data', (d: Buffer) => { this.bytes.down += d.length; });
    client.pipe(target);
    target.pipe(client);
    client.on('error', close).on('close', close);
    target.on('error', close).on('close', close);
    if (this.held) {
      client.pause();
      target.pause();
    } else client.resume();
  }

  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  /** Drops every connection and refuses new ones until heal(). */
  cut(): void {
    this.isCut = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  /** Holds every byte in both directions (a congested link): nothing is lost, it flows again at release(). */
  hold(): void {
    this.held = true;
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  release(): void {
    this.held = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
