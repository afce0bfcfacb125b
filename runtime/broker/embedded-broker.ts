/**
 * The node's own MQTT broker: aedes on a TCP socket. The node, Home
 * Assistant, mosquitto_sub and (later) neighbouring nodes all connect here.
 * Persistence is aedes's in-memory default: retained state (online, HA
 * discovery, last decisions) is re-published by the node at every start.
 */
import net from 'node:net';
import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';

export type InProcessDeliver = (packet: { topic: string; payload: Buffer | string }, done: () => void) => void;

export interface EmbeddedBrokerOptions {
  host: string;
  /** 0 = any free port; `start()` resolves with the port actually bound. */
  port: number;
  logger: Logger;
  counters: Counters;
}

export class EmbeddedBroker {
  private aedes: Aedes | undefined;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private boundPort = 0;

  constructor(private readonly options: EmbeddedBrokerOptions) {}

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `mqtt://${host.includes(':') ? `[${host}]` : host}:${this.boundPort}`;
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  async start(): Promise<number> {
    const { Aedes } = await import('aedes');
    const aedes = await Aedes.createBroker();
    this.aedes = aedes;
    const { logger, counters } = this.options;
    aedes.on('clientError', (client, err) => {
      counters.increment('broker.client_errors');
      logger.debug({ client: client.id, err: err.message }, 'MQTT client error');
    });
    aedes.on('connectionError', (_client, err) => {
      counters.increment('broker.connection_errors');
      logger.debug({ err: err.message }, 'MQTT connection error');
    });
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const inUse = err.code === 'EADDRINUSE';
        reject(new ApiaryError(ErrorCodes.BROKER_LISTEN_FAILED, `the MQTT broker cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`, {
          hint: inUse ? 'another broker (mosquitto?) or Apiary node uses that port: stop it, or start with --port 0 (any free port) or --port 1884' : 'check broker.host in the config',
          cause: err,
        }));
      });
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.options.port;
    return this.boundPort;
  }

  /** Publishes from inside the node, with no socket: retained messages are stored as from any client. */
  publish(topic: string, payload: string | Buffer, options: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new Error('broker not started'));
    return new Promise((resolve, reject) => {
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos ?? 0, retain: options.retain ?? false, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** An in-process subscription (aedes's mqemitter), for the node's own commands. */
  subscribe(filter: string, deliver: InProcessDeliver): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new Error('broker not started'));
    return new Promise((resolve) => aedes.subscribe(filter, deliver, () => resolve()));
  }

  unsubscribe(filter: string, deliver: InProcessDeliver): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.resolve();
    return new Promise((resolve) => aedes.unsubscribe(filter, deliver, () => resolve()));
  }

  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    this.server = undefined;
    this.aedes = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }
}
