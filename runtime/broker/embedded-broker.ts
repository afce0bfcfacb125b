/**
 * The node's own MQTT broker: aedes on a TCP (or TLS) socket. The node, Home
 * Assistant, mosquitto_sub and (later) neighbouring nodes all connect here.
 * Persistence is aedes's in-memory default: retained state (online, HA
 * discovery, last decisions) is re-published by the node at every start.
 *
 * It is as strict about MQTT 3.1.1 as Debian's mosquitto: a wire guard
 * (mqtt-guard.ts) checks every packet before aedes parses it, and aedes's
 * hooks apply the access policy (broker-access.ts). Session and retained
 * message rules aedes 1.2 gets wrong are applied on the wire
 * (connection-semantics.ts, mqtt31.ts) and in its forward hook
 * (retained-delivery.ts); the rest by a small patch of aedes at install
 * (patches/aedes-1.2.0.patch). Every refusal is counted
 * as `broker.rejected.<reason>`; none of them can take the process down.
 *
 * A client that does not read never holds up the others: what waits for it
 * is bounded (maxQueuedMessages, maxQueuedBytes), a PUBLISH beyond the bound
 * is dropped, and a client whose socket takes nothing for stallTimeoutMs is
 * disconnected (outbox.ts). Every PUBLISH a client does not get is counted as
 * `broker.dropped.<reason>`, every client cut as `broker.disconnected.stalled`.
 *
 * Before a client has authenticated it can hold little: a capped number of
 * sockets (in total and per address), a CONNECT of a few KiB, for a few
 * seconds (connection-limits.ts). After, what it can make the broker keep is
 * bounded per client (client-budgets.ts), what it may read is asked per
 * message (BrokerAccessPolicy.canRead), and the node's retained announcements
 * are restored if a client clears them (announcement-keeper.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Aedes, AedesPublishPacket, AuthenticateError, Client, ConnectPacket, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { AnnouncementKeeper } from './announcement-keeper.js';
import { openLoopbackPolicy, type BrokerAccessPolicy, type BrokerPrincipal, type BrokerRefusal } from './broker-access.js';
import { boundIncomingQos2, boundOfflineQueues, CLIENT_BUDGET_DEFAULTS, RetainedBudget, SubscriptionBudget } from './client-budgets.js';
import type { IncomingStore, OutgoingQueueStore, RetainedLimits, RetainedRefusal, SubscriptionRefusal } from './client-budgets.js';
import { CONNECTION_LIMIT_DEFAULTS, ConnectionLimits, type ConnectionRefusal } from './connection-limits.js';
import { SessionRegistry } from './connection-semantics.js';
import { DEFAULT_MAX_TOPIC_LEVELS, GuardedConnection, type GuardReason } from './mqtt-guard.js';
import type { DropReason, DroppedPublish, OutboxLimits } from './outbox.js';
import { RetainedDelivery } from './retained-delivery.js';

export type InProcessDeliver = (packet: { topic: string; payload: Buffer | string }, done: () => void) => void;

/** The suffixes of the `broker.rejected.*` counters. */
export type BrokerRejection = GuardReason | 'identifier' | BrokerRefusal['refused'] | 'publish' | 'subscribe' | 'connect-timeout' | 'tls-handshake' | ConnectionRefusal | RetainedRefusal | SubscriptionRefusal;

export interface EmbeddedBrokerTls {
  key: Buffer | string;
  cert: Buffer | string;
  /** CAs that client certificates must chain to (with requestCert). */
  ca?: Buffer | string | (Buffer | string)[];
  /** Ask for a client certificate, and refuse the handshake without a valid one. */
  requestCert?: boolean;
}

export interface EmbeddedBrokerOptions {
  host: string;
  /** 0 = any free port; `start()` resolves with the port actually bound. */
  port: number;
  logger: Logger;
  counters: Counters;
  /** Who may connect, publish and subscribe. Default: openLoopbackPolicy(). */
  access?: BrokerAccessPolicy;
  /** Largest packet accepted, fixed header included: 256 KiB of payload plus room for topic and header. */
  maxPacketBytes?: number;
  /**
   * Deepest topic name or filter accepted, in levels (the spec sets no limit;
   * mosquitto allows 200). Default DEFAULT_MAX_TOPIC_LEVELS; at most 1000, what aedes's matchers take.
   */
  maxTopicLevels?: number;
  /** A connection with no (complete) CONNECT within this time is closed (and a TLS handshake must finish within it). Default 5 s. */
  connectTimeoutMs?: number;
  /** Largest CONNECT accepted, refused from its header alone: a link token and a will fit in a few KiB. Default 16 KiB. */
  maxConnectBytes?: number;
  /** Open sockets over all listeners; one more is closed at once (`broker.rejected.connections-total`). 0 = no limit. */
  maxConnections?: number;
  /** Open sockets from one remote address (`broker.rejected.connections-per-address`). 0 = no limit. */
  maxConnectionsPerAddress?: number;
  /** QoS 2 messages received from one client id and awaiting its PUBREL; one more closes the connection (`broker.rejected.inflight-qos2`). 0 = no limit. */
  maxInflightQos2?: number;
  /** Retained messages (count and bytes) one client may hold, and all clients together; the node's own are not counted. */
  retained?: Partial<RetainedLimits>;
  /** Topic filters one connection may hold; one more gets SUBACK 0x80 (`broker.rejected.subscriptions-client`). 0 = no limit. Default 1000. */
  maxSubscriptionsPerClient?: number;
  /** Payload bytes queued for all persistent sessions whose clients are away (each one also within maxQueuedMessages and maxQueuedBytes). 0 = no limit. Default 32 MiB. */
  maxOfflineQueuedBytes?: number;
  tls?: EmbeddedBrokerTls;
  /** A second listener, with TLS, beside the plain one (broker.tls): local tools stay plain on loopback, neighbours use TLS. */
  tlsListener?: { host: string; port: number; tls: EmbeddedBrokerTls };
  /**
   * PUBLISH packets held for one client whose socket is full (its kernel
   * buffers took what they could); more are dropped and counted as
   * `broker.dropped.queue_full`. Like mosquitto's max_queued_messages. 0 = no limit.
   */
  maxQueuedMessages?: number;
  /** Bytes held for one such client; a PUBLISH that does not fit is dropped the same way. Like mosquitto's max_queued_bytes. 0 = no limit. */
  maxQueuedBytes?: number;
  /**
   * A client whose socket takes nothing for this long while packets wait for
   * it is disconnected (`broker.disconnected.stalled`); every PUBLISH it did
   * not get is counted as `broker.dropped.stalled`. 0 = never.
   */
  stallTimeoutMs?: number;
}

/** Defaults of the outgoing bounds: mosquitto's 1000 messages, 4 MiB (about one more socket buffer), 30 s. */
export const OUTGOING_DEFAULTS: OutboxLimits = { maxQueuedMessages: 1000, maxQueuedBytes: 4 * 1024 * 1024, stallTimeoutMs: 30_000 };

/** What waits for the broker's clients right now (see EmbeddedBroker.outgoing()). */
export interface BrokerOutgoing {
  /** Connections whose socket is full, with packets waiting in the broker. */
  readonly waitingClients: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** QoS 1/2 PUBLISH packets written and not yet acknowledged, over all clients. */
  readonly unacknowledged: number;
}

type PublishDone = (error?: Error | null) => void;
/** The part of aedes's persistence (untyped in aedes's definitions) a dropped QoS 1/2 message is cleared from. */
interface OutgoingStore {
  outgoingClearMessageId(client: Client, packet: { messageId: number }): Promise<unknown>;
}
type AedesPublish = (packet: PublishPacket, client?: Client | null | PublishDone, done?: PublishDone) => void;

const CONNACK_CODE = { 'identifier': 2, 'bad-credentials': 4, 'not-authorized': 5 } as const;
/** Defaults of the pre-authentication bounds (issue 10, finding 9). */
export const CONNECT_DEFAULTS = { connectTimeoutMs: 5_000, maxConnectBytes: 16 * 1024 } as const;

export class EmbeddedBroker {
  private aedes: Aedes | undefined;
  private servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<GuardedConnection>();
  private persistence: OutgoingStore | undefined;
  /** Connections already reported (once each) as falling behind. */
  private readonly behind = new WeakSet<GuardedConnection>();
  private boundPort = 0;
  private boundTlsPort = 0;
  private readonly access: BrokerAccessPolicy;
  /** Who each connected client authenticated as. */
  private readonly principals = new WeakMap<Client, BrokerPrincipal>();
  /** The CONNECT as sent, between aedes's preConnect and authenticate hooks (aedes replaces an empty client id). */
  private readonly connects = new WeakMap<Client, ConnectPacket>();
  /** Client PUBLISH packets the policy refused: acknowledged as usual, then never routed. */
  private readonly refused = new WeakSet<PublishPacket>();
  private readonly connectionLimits: ConnectionLimits;
  private readonly retainedBudget: RetainedBudget;
  private readonly announcements: AnnouncementKeeper;
  private readonly subscriptionBudget: SubscriptionBudget;
  /** The policy's canRead, bound once: it runs for every message delivered. */
  private readonly readCheck: ((principal: BrokerPrincipal, topic: string) => boolean) | undefined;
  /** Persistent sessions, for Session Present and DUP on re-delivery (connection-semantics.ts). */
  private readonly sessions: SessionRegistry;
  /** Retained messages sent for a SUBSCRIBE: once, at the subscription's QoS (retained-delivery.ts). */
  private readonly retained: RetainedDelivery;

  constructor(private readonly options: EmbeddedBrokerOptions) {
    this.access = options.access ?? openLoopbackPolicy();
    const { counters } = options;
    this.sessions = new SessionRegistry(undefined, () => counters.increment('broker.sessions_forgotten'));
    this.retained = new RetainedDelivery(() => counters.increment('broker.deduplicated'));
    this.readCheck = this.access.canRead?.bind(this.access);
    this.connectionLimits = new ConnectionLimits({
      maxConnections: options.maxConnections ?? CONNECTION_LIMIT_DEFAULTS.maxConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? CONNECTION_LIMIT_DEFAULTS.maxConnectionsPerAddress,
    });
    this.retainedBudget = new RetainedBudget({ ...CLIENT_BUDGET_DEFAULTS.retained, ...options.retained });
    this.subscriptionBudget = new SubscriptionBudget(options.maxSubscriptionsPerClient ?? CLIENT_BUDGET_DEFAULTS.maxSubscriptionsPerClient);
    this.announcements = new AnnouncementKeeper((topic, payload) => this.publish(topic, payload, { retain: true, qos: 1 }), options.counters, options.logger);
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${this.boundPort}`;
  }

  /** The certificate (PEM) of the TLS listener, for neighbours to pin. */
  get tlsCertificate(): string | undefined {
    const cert = this.options.tlsListener?.tls.cert;
    return cert === undefined ? undefined : cert.toString();
  }

  /** The port of the TLS listener (broker.tls), 0 when there is none. */
  get tlsPort(): number {
    return this.boundTlsPort;
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Sockets open now, authenticated or not (bounded by maxConnections). */
  get openConnections(): number {
    return this.connectionLimits.connections;
  }

  /** What waits in the broker for its clients (the outboxes), summed over connections. */
  outgoing(): BrokerOutgoing {
    let waitingClients = 0, queuedMessages = 0, queuedBytes = 0, unacknowledged = 0;
    for (const conn of this.connections) {
      const o = conn.outgoing;
      if (o.waiting) waitingClients += 1;
      queuedMessages += o.queuedPublishes;
      queuedBytes += o.queuedBytes;
      unacknowledged += o.unacknowledged;
    }
    return { waitingClients, queuedMessages, queuedBytes, unacknowledged };
  }

  async start(): Promise<number> {
    const { logger, counters } = this.options;
    const maxPacketBytes = this.options.maxPacketBytes ?? 300_000;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? CONNECT_DEFAULTS.connectTimeoutMs;
    const maxConnectBytes = this.options.maxConnectBytes ?? CONNECT_DEFAULTS.maxConnectBytes;
    const outgoing = outgoingLimits(this.options);
    let maxTopicLevels = this.options.maxTopicLevels ?? DEFAULT_MAX_TOPIC_LEVELS;
    if (!Number.isSafeInteger(maxTopicLevels) || maxTopicLevels < 1 || maxTopicLevels > 1000) throw new RangeError(`EmbeddedBroker maxTopicLevels must be a whole number from 1 to 1000, got ${String(maxTopicLevels)}`);
    const [{ Aedes }, { default: mqttPacket }] = await Promise.all([import('aedes'), import('mqtt-packet')]);
    // mqtt-packet writes every packet aedes sends. Left to its default, its first write fills a table of
    // all 65,536 two-byte numbers (packet ids, lengths): 65,536 Buffers, about 6 MB of heap held for
    // good on a 512 MB board (issue 16). Without it, such a number is a 2-byte Buffer made as it is written.
    mqttPacket.writeToStream.cacheNumbers = false;
    const aedes = await Aedes.createBroker({
      connectTimeout: connectTimeoutMs,
      // No 23-character limit for MQTT 3.1 client ids (mosquitto applies none); authenticate() refuses an empty one, counted.
      maxClientsIdLength: 65_535,
      // boundIncomingQos2 (below) replaces aedes's per-socket bound with one per client id that keeps no payloads.
      maxInflightInbound: 0,
      maxTopicLevels,
      preConnect: (client, packet, done) => {
        this.connects.set(client, packet);
        done(null, true);
      },
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => {
        if (!this.mayPublish(client, packet.topic)) {
          this.reject('publish', { client: client?.id, topic: packet.topic });
          this.refused.add(packet);
        } else if (packet.retain) {
          const overBudget = this.retainedBudget.admit(this.ownerOf(client), packet.topic, retainedBytes(packet));
          if (overBudget) {
            this.reject(overBudget, { client: client?.id, topic: packet.topic });
            this.refused.add(packet);
          }
        }
        done(null);
      },
      authorizeSubscribe: (client, sub, done) => {
        this.retained.subscribing(client);
        const principal = this.principals.get(client);
        if (principal && this.ask(() => this.access.canSubscribe(principal, sub.topic))) {
          if (this.subscriptionBudget.admit(client, sub.topic)) return done(null, sub);
          this.reject('subscriptions-client', { client: client.id, filter: sub.topic });
        }
        this.reject('subscribe', { client: client.id, filter: sub.topic });
        done(null, null); // null = SUBACK 0x80 for this filter [MQTT-3.9.3-2]
      },
      authorizeForward: (client, packet) => this.forward(client, packet),
      // The outbox never makes aedes wait for a drain, so aedes's drainTimeout (60 s) never starts: stallTimeoutMs replaces it.
    });
    // A refused PUBLISH is dropped the way mosquitto drops it for 3.1.1: no
    // disconnect, and QoS 1/2 still get PUBACK/PUBREC (then PUBCOMP), in
    // order. aedes's authorizePublish can only refuse by closing the
    // connection, so the hook above lets the packet through to aedes's own
    // acknowledgement and this drops it where aedes would route it
    // (lib/handlers/publish.js passes the same packet object on).
    const route = aedes.publish.bind(aedes) as AedesPublish;
    const guardedRoute: AedesPublish = (packet, client, done) => {
      const callback = typeof client === 'function' ? client : done;
      if (this.refused.has(packet)) return callback?.();
      if (!packet.retain) return route(packet, client, done);
      const publisher = typeof client === 'function' ? null : client ?? null;
      route(packet, publisher, (err) => {
        if (!err) this.retainedRouted(publisher, packet);
        callback?.(err);
      });
    };
    Object.assign(aedes, { publish: guardedRoute });
    // Unpatched aedes (scripts/patch-aedes.mjs did not run) clamps the depth to 100: deeper topics would crash its matchers.
    const aedesLevels = (aedes as unknown as { maxTopicLevels: number }).maxTopicLevels;
    if (aedesLevels < maxTopicLevels) {
      logger.warn({ maxTopicLevels, aedesLevels }, 'aedes is not patched: topics deeper than its limit are refused (fix: run `npm ci`, or `node scripts/patch-aedes.mjs`)');
      maxTopicLevels = aedesLevels;
    }
    this.aedes = aedes;
    this.persistence = (aedes as unknown as { persistence?: OutgoingStore }).persistence;
    const store = (aedes as unknown as { persistence: IncomingStore & OutgoingQueueStore }).persistence;
    boundIncomingQos2(store, this.options.maxInflightQos2 ?? CLIENT_BUDGET_DEFAULTS.maxInflightQos2, counters);
    boundOfflineQueues(store, {
      perClientMessages: outgoing.maxQueuedMessages, perClientBytes: outgoing.maxQueuedBytes,
      totalBytes: this.options.maxOfflineQueuedBytes ?? CLIENT_BUDGET_DEFAULTS.maxOfflineQueuedBytes,
    }, counters, (clientId) => {
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId];
      return client !== undefined && !client.closed;
    });
    aedes.on('unsubscribe', (filters, client) => this.subscriptionBudget.removed(client, filters));
    aedes.on('clientError', (client, err) => {
      counters.increment('broker.client_errors');
      logger.debug({ client: client.id, err: err.message }, 'MQTT client error');
    });
    aedes.on('connectionError', (_client, err) => {
      // aedes's connectTimeout fires as this error, on a connection that never sent CONNECT.
      if (err.message === 'connect did not arrive in time') this.reject('connect-timeout', {});
      counters.increment('broker.connection_errors');
      logger.debug({ err: err.message }, 'MQTT connection error');
    });

    const serve = (socket: net.Socket): void => {
      const conn: GuardedConnection = new GuardedConnection(socket, {
        maxPacketBytes,
        maxConnectBytes,
        maxTopicLevels,
        semantics: this.sessions.connection(),
        onReject: (r) => this.reject(r.reason, { remote: socket.remoteAddress, detail: r.detail }),
        outgoing,
        onDropped: (reason, packets) => this.dropped(conn, reason, packets),
        onStalled: () => {
          counters.increment('broker.disconnected.stalled');
          logger.warn({ client: clientOf(conn)?.id, remote: socket.remoteAddress, stallTimeoutMs: outgoing.stallTimeoutMs }, 'MQTT client stopped reading; disconnected');
        },
      });
      this.connections.add(conn);
      conn.once('close', () => this.connections.delete(conn));
      aedes.handle(conn);
    };
    this.boundPort = await this.listen(serve, this.options.host, this.options.port, this.options.tls);
    const extra = this.options.tlsListener;
    if (extra) this.boundTlsPort = await this.listen(serve, extra.host, extra.port, extra.tls);
    return this.boundPort;
  }

  private async listen(serve: (socket: net.Socket) => void, host: string, port: number, tlsOptions: EmbeddedBrokerTls | undefined): Promise<number> {
    const connectTimeoutMs = this.options.connectTimeoutMs ?? CONNECT_DEFAULTS.connectTimeoutMs;
    const server = tlsOptions
      ? tls.createServer({ ...tlsOptions, rejectUnauthorized: tlsOptions.requestCert ?? false, handshakeTimeout: connectTimeoutMs }, serve)
      : net.createServer(serve);
    server.on('tlsClientError', (err: Error) => this.reject('tls-handshake', { err: err.message }));
    // The raw TCP sockets, TLS handshakes in progress included, so stop() can cut them all.
    server.on('connection', (socket: net.Socket) => {
      // Over a cap: closed before a byte is read (for TLS, before the handshake).
      const overLimit = this.connectionLimits.admit(socket);
      if (overLimit) {
        this.reject(overLimit, { remote: socket.remoteAddress });
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const inUse = err.code === 'EADDRINUSE';
        reject(new ApiaryError(ErrorCodes.BROKER_LISTEN_FAILED, `the MQTT broker cannot listen on ${host}:${port}${tlsOptions ? ' (TLS)' : ''}: ${err.message}`, {
          hint: inUse ? 'another broker (mosquitto?) or Apiary node uses that port: stop it, or start with --port 0 (any free port) or --port 1884' : 'check broker.host in the config',
          cause: err,
        }));
      });
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Publishes from inside the node, with no socket (no access policy): retained messages are stored as from any client. */
  publish(topic: string, payload: string | Buffer, options: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new Error('broker not started'));
    return new Promise((resolve, reject) => {
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos ?? 0, retain: options.retain ?? false, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** An in-process subscription (aedes's mqemitter, no access policy), for the node's own commands. */
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
    const servers = this.servers.splice(0);
    const aedes = this.aedes;
    this.aedes = undefined;
    if (servers.length > 0) {
      const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    }
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }

  /**
   * aedes's authorizeForward hook, called as a message is routed to a client.
   * A client whose connection already ended will not be written to: the
   * message is counted here, and refused so aedes drops it too. A persistent
   * session's QoS 1/2 message is left to aedes after an ordinary close (it
   * stays in the session and is sent again when the client returns).
   */
  private forward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (!this.mayRead(client, packet.topic)) return null;
    if (!client.closed) return this.retained.forward(client, packet);
    const conn = client.conn;
    if (!(conn instanceof GuardedConnection)) return packet;
    const reason = conn.endReason ?? 'closed';
    if (reason === 'closed' && !client.clean && packet.qos > 0) return packet;
    conn.undeliverable({ qos: packet.qos, messageId: undefined });
    return null;
  }

  /**
   * PUBLISH packets a client did not get, from its outbox. QoS 1/2 ones are
   * also cleared from a persistent session, so a drop is final: never sent
   * again on reconnect (the mesh's catch-up recovers its own data). After an
   * ordinary close, aedes keeps a persistent session's QoS 1/2 messages and
   * sends them again on reconnect: those are not lost, so not counted.
   */
  private dropped(conn: GuardedConnection, reason: DropReason, packets: readonly DroppedPublish[]): void {
    const client = clientOf(conn);
    const persistence = this.persistence;
    const persistent = client !== undefined && !client.clean;
    let count = 0;
    for (const { qos, messageId } of packets) {
      if (persistent && qos > 0 && messageId !== undefined) {
        if (reason === 'closed') continue;
        persistence?.outgoingClearMessageId(client, { messageId }).catch(() => undefined);
        conn.semantics?.forget(messageId);
      }
      count += 1;
    }
    if (count === 0) return;
    const { counters, logger } = this.options;
    counters.increment(`broker.dropped.${reason}`, count);
    if (reason === 'queue_full' && !this.behind.has(conn)) {
      this.behind.add(conn);
      logger.warn({ client: client?.id, remote: conn.remoteAddress }, 'MQTT client is not reading fast enough; dropping messages for it (broker.dropped.queue_full)');
    } else logger.debug({ client: client?.id, reason, count }, 'MQTT messages dropped for a client');
  }

  /** aedes's authenticate hook: a refusal here is answered with its CONNACK code, then the close [MQTT-3.2.2-5]. */
  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const connect = this.connects.get(client);
    this.connects.delete(client);
    const clientId = connect?.clientId ?? client.id;
    const version = connect?.protocolVersion ?? client.version;
    // [MQTT-3.1.3-8]: an empty client id needs clean session = 1; MQTT 3.1 wants one in any case. Like mosquitto, the
    // 3.1 limit of 23 characters is not applied: 3.1 clients commonly send longer ids, and 3.1.1 allows them.
    if (clientId === '' && (!client.clean || version === 3)) {
      return this.refuseConnect(client, 'identifier', done);
    }
    const conn = client.conn instanceof GuardedConnection ? client.conn : undefined;
    const verdict = this.ask<BrokerPrincipal | BrokerRefusal>(() => this.access.authenticate({ clientId, username, password, remoteAddress: conn?.remoteAddress, socket: conn?.socket }), { refused: 'not-authorized' });
    if ('refused' in verdict) return this.refuseConnect(client, verdict.refused, done);
    this.principals.set(client, verdict);
    done(null, true);
  }

  private refuseConnect(client: Client, reason: keyof typeof CONNACK_CODE, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    this.reject(reason, { client: client.id });
    done(Object.assign(new Error(`connection refused: ${reason}`), { returnCode: CONNACK_CODE[reason] }), false);
  }

  private mayPublish(client: Client | null, topic: string): boolean {
    const principal = client ? this.principals.get(client) : undefined;
    // $SYS is the broker's own (aedes's default hook refused it too); $share is MQTT 5 shared subscriptions. mosquitto refuses both.
    if (!principal || topic.startsWith('$SYS') || topic.startsWith('$share')) return false;
    return this.ask(() => this.access.canPublish(principal, topic));
  }

  /** Asked per message delivered to a client (canRead counts what it withholds); a policy without canRead costs nothing here. */
  private mayRead(client: Client, topic: string): boolean {
    const canRead = this.readCheck;
    if (!canRead) return true;
    const principal = this.principals.get(client);
    return principal !== undefined && this.ask(() => canRead(principal, topic));
  }

  /** Whom a client's retained messages are charged to: a peer by node id (whatever connection), a local client by client id. */
  private ownerOf(client: Client | null): string {
    const principal = client ? this.principals.get(client) : undefined;
    return principal ? `${principal.kind}:${principal.id}` : `client:${client?.id ?? ''}`;
  }

  /** A retained PUBLISH was routed (and stored, or cleared): charge it, and restore the node's announcement if a client cleared it. */
  private retainedRouted(publisher: Client | null, packet: PublishPacket): void {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    this.retainedBudget.stored(publisher ? this.ownerOf(publisher) : undefined, packet.topic, retainedBytes(packet));
    this.announcements.routed(packet.topic, payload, publisher === null);
  }

  /** A policy that throws refuses, and is logged: it must not crash the broker. */
  private ask<T>(question: () => T, refusal: T): T;
  private ask(question: () => boolean): boolean;
  private ask<T>(question: () => T, refusal?: T): T | boolean {
    try {
      return question();
    } catch (err) {
      this.options.logger.error({ err }, 'the broker access policy threw; refusing');
      return refusal ?? false;
    }
  }

  private reject(reason: BrokerRejection, details: Record<string, unknown>): void {
    this.options.counters.increment(`broker.rejected.${reason}`);
    this.options.logger.debug({ reason, ...details }, 'MQTT refused');
  }
}

/** What a retained message costs: its payload and topic; 0 for an empty payload, which clears the topic [MQTT-3.3.1-10]. */
function retainedBytes(packet: PublishPacket): number {
  const payload = Buffer.byteLength(packet.payload);
  return payload === 0 ? 0 : payload + Buffer.byteLength(packet.topic);
}

/** aedes sets `conn.client` when it takes a connection. */
function clientOf(conn: GuardedConnection): Client | undefined {
  return (conn as unknown as { client?: Client }).client;
}

function outgoingLimits(options: EmbeddedBrokerOptions): OutboxLimits {
  const limits: OutboxLimits = {
    maxQueuedMessages: options.maxQueuedMessages ?? OUTGOING_DEFAULTS.maxQueuedMessages,
    maxQueuedBytes: options.maxQueuedBytes ?? OUTGOING_DEFAULTS.maxQueuedBytes,
    stallTimeoutMs: options.stallTimeoutMs ?? OUTGOING_DEFAULTS.stallTimeoutMs,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`EmbeddedBroker ${name} must be a whole number ≥ 0, got ${String(value)}`);
  }
  return limits;
}
