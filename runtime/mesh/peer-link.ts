/**
 * One outbound link: an MQTT.js client connected to a neighbour's broker,
 * with a persistent session (clean = false), QoS 1, a last will that marks
 * us offline there, and reconnection with exponential backoff and jitter.
 *
 * The link opens its TCP or TLS socket itself before MQTT starts, so the
 * link token can be bound to that very connection (link-binding.ts), and it
 * counts as up only once the broker has proved, over it, that it holds the
 * peer's node key (link-token.ts): until then nothing is sent on it. A link
 * whose proof does not come within proofTimeoutMs is closed and counted
 * (`mesh.rejected.link_unproven`); onUnproven lets the mesh replace it.
 *
 * The link only carries messages; it never holds the truth. A message that
 * cannot go now (link down, or too many unacknowledged) is not queued: it is
 * counted, and the peer gets the entries by catch-up, read from disk. So
 * neither MQTT.js's offline queue nor the broker's grows with an outage.
 */
import net from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import type * as Mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';
import { clientBinding } from './link-binding.js';
import { linkProofTopic, makeLinkToken } from './link-token.js';
import type { MeshIdentity } from './mesh-identity.js';
import { meshTopic } from './mesh-protocol.js';

export type LinkState = 'connecting' | 'up' | 'down' | 'stopped';

/** MQTT.js, loaded at a link's first dial: a node without neighbours never needs it (issue 16, start-up). */
let mqttModule: Promise<typeof Mqtt> | undefined;
const loadMqtt = () => (mqttModule ??= import('mqtt'));

export interface PeerLinkOptions {
  url: string;
  peerId: string;
  identity: MeshIdentity;
  prefix: string;
  counters: Counters;
  logger: Logger;
  now: () => number;
  onUp: () => void;
  onDown: () => void;
  /** Reconnect delays: doubles from initialMs to maxMs, with ±20 % jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Unacknowledged QoS 1 messages allowed before sends are deferred to catch-up. */
  maxInFlight?: number;
  /** For mqtts: the neighbour's own (self-signed) broker certificate, pinned; see pinnedTlsOptions. */
  pinnedCertificate?: PinnedCertificate;
  /**
   * For mqtts without a pin: accept any broker certificate, since the link
   * proof (signed over the TLS session's exporter material) authenticates the
   * peer. For discovered peers, whose certificate is not known beforehand.
   */
  tlsByProofOnly?: boolean;
  /** Checks a proof from the broker (verifyLinkProof with the member directory). */
  verifyProof: (payload: Buffer, expected: { nonce: string; bind: string }) => 'proven' | 'stale' | 'invalid';
  /** How long the broker has to prove its key after CONNACK. */
  proofTimeoutMs?: number;
  /**
   * Called when `giveUpAfter` attempts in a row ended without the peer's key
   * proven (refused, closed, no proof, no connection): the mesh drops the
   * link (a discovered one) and may try another address. Without it, the link retries for ever.
   */
  onUnproven?: () => void;
  giveUpAfter?: number;
}

export interface PinnedCertificate {
  /** PEM of the certificate the neighbour's broker presents. */
  readonly pem: string;
  /** Its SHA-256 fingerprint as node:crypto prints it (AA:BB:...). */
  readonly fingerprint256: string;
}

/**
 * TLS options that accept exactly one certificate: it is the only trust
 * anchor (so the chain check in the handshake passes for it alone), and the
 * host-name check is replaced by a fingerprint check, since boards on DHCP
 * have no stable names. This is certificate pinning as node:tls documents it
 * (checkServerIdentity).
 */
export function pinnedTlsOptions(pin: PinnedCertificate): { ca: string; rejectUnauthorized: true; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  return {
    ca: pin.pem,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => (cert.fingerprint256 === pin.fingerprint256
      ? undefined
      : Object.assign(new Error(`the broker's certificate ${cert.fingerprint256} is not the pinned one ${pin.fingerprint256}`), { code: 'APIARY_TLS_PIN_MISMATCH' })),
  };
}

export class PeerLink {
  state: LinkState = 'down';
  lastUpAt: number | undefined;
  lastError: string | undefined;
  private client: MqttClient | undefined;
  /** The socket opened for the next MQTT connection (handed to MQTT.js by its stream builder). */
  private socket: net.Socket | undefined;
  /** A socket still connecting (closed by stop()). */
  private opening: net.Socket | undefined;
  /** The token of the current connection: its proof must name this nonce and binding. */
  private expected: { nonce: string; bind: string } | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private proofTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  /** Attempts in a row that ended without the peer's key proven. */
  private failedAttempts = 0;
  private retryAt = 0;
  private inFlight = 0;

  constructor(private readonly options: PeerLinkOptions) {}

  get peerId(): string {
    return this.options.peerId;
  }

  get url(): string {
    return this.options.url;
  }

  /** A getter, not `state === 'stopped'` inline: TypeScript would keep that narrowing across the awaits of dial(). */
  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  start(): void {
    this.state = 'connecting';
    void this.dial();
  }

  /** Opens the socket, then runs MQTT on it with a token bound to it. */
  private async dial(): Promise<void> {
    let socket: net.Socket;
    let mqtt: typeof Mqtt;
    try {
      mqtt = await loadMqtt();
      if (this.stopped) return; // stopped while MQTT.js loaded: no socket to open
      socket = await this.openSocket();
    } catch (err) {
      if (this.state === 'stopped') return;
      this.lastError = (err as Error).message;
      this.options.counters.increment('mesh.link_errors');
      this.state = 'down';
      this.attemptFailed();
      return;
    }
    if (this.state === 'stopped') {
      socket.destroy();
      return;
    }
    const { identity, peerId, now } = this.options;
    const token = makeLinkToken(identity, peerId, now(), clientBinding(socket));
    this.expected = { nonce: token.nonce, bind: token.bind };
    this.socket = socket;
    if (this.client) {
      this.client.options.password = token.password;
      this.client.reconnect();
      return;
    }
    this.client = this.createClient(mqtt.MqttClient, token.password);
    this.client.connect();
  }

  private openSocket(): Promise<net.Socket> {
    const url = new URL(this.options.url);
    const secure = url.protocol === 'mqtts:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port) || (secure ? 8883 : 1883);
    const pin = this.options.pinnedCertificate;
    const socket = secure
      ? tls.connect({ host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}), ...(pin ? pinnedTlsOptions(pin) : { rejectUnauthorized: !this.options.tlsByProofOnly }) })
      : net.connect({ host, port });
    this.opening = socket;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer);
        socket.off('error', settle);
        socket.off('close', onClose);
        if (this.opening === socket) this.opening = undefined;
        if (!err) {
          // Until MQTT.js takes it (a deferred reconnect may wait), an error must not go unhandled; MQTT.js reports its own.
          socket.on('error', () => undefined);
          return resolve(socket);
        }
        socket.destroy();
        reject(err);
      };
      const onClose = () => settle(new Error(`the connection to ${this.options.url} closed`));
      const timer = setTimeout(() => settle(new Error(`no connection to ${this.options.url} within 10 s`)), 10_000);
      timer.unref();
      socket.once('error', settle);
      socket.once('close', onClose);
      socket.once(secure ? 'secureConnect' : 'connect', () => settle());
    });
  }

  private createClient(Client: typeof MqttClient, password: Buffer): MqttClient {
    const { identity, prefix, peerId } = this.options;
    const me = identity.node.nodeId;
    const proofTopic = linkProofTopic(prefix, peerId, me);
    const client = new Client(() => this.takeSocket(), {
      protocolVersion: 4,
      clientId: `apiary-${me}`,
      clean: false,
      username: me,
      password,
      reconnectPeriod: 0, // our own backoff, below
      connectTimeout: 10_000,
      keepalive: 30,
      manualConnect: true,
      will: { topic: `${prefix}/${me}/state`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    client.on('connect', () => {
      this.inFlight = 0;
      this.lastError = undefined;
      clearTimeout(this.proofTimer);
      this.proofTimer = setTimeout(() => this.unproven(client), this.options.proofTimeoutMs ?? 10_000);
      this.proofTimer.unref();
      client.subscribe(proofTopic, { qos: 1 });
    });
    client.on('message', (topic, payload) => {
      if (topic !== proofTopic || this.state !== 'connecting' || !this.expected) return;
      const verdict = this.options.verifyProof(payload, this.expected);
      if (verdict === 'stale') return;
      if (verdict === 'invalid') {
        this.options.counters.increment('mesh.rejected.link_proof_invalid');
        this.unproven(client);
        return;
      }
      clearTimeout(this.proofTimer);
      this.attempt = 0;
      this.failedAttempts = 0;
      this.state = 'up';
      this.lastUpAt = Date.now();
      client.publish(`${prefix}/${me}/state`, 'online', { qos: 1, retain: true });
      this.options.onUp();
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      this.options.counters.increment('mesh.link_errors');
    });
    client.on('close', () => {
      clearTimeout(this.proofTimer);
      if (this.state === 'stopped') return;
      const wasUp = this.state === 'up';
      this.state = 'down';
      if (wasUp) {
        this.options.onDown();
        this.scheduleReconnect();
      } else this.attemptFailed();
    });
    return client;
  }

  /** MQTT.js's stream builder: the socket dial() opened (a closed one if there is none, so the attempt fails and is retried). */
  private takeSocket(): net.Socket {
    const socket = this.socket;
    this.socket = undefined;
    if (socket && !socket.destroyed) return socket;
    const closed = new net.Socket();
    setImmediate(() => closed.destroy()); // emits close: the attempt fails and is retried
    return closed;
  }

  private unproven(client: MqttClient): void {
    if (this.state !== 'connecting' || this.client !== client) return;
    this.options.counters.increment('mesh.rejected.link_unproven');
    this.lastError = `the broker at ${this.options.url} did not prove it holds the key of node ${this.options.peerId}`;
    this.options.logger.warn({ peer: this.options.peerId, url: this.options.url }, 'mesh link closed: the broker did not prove the peer\'s key');
    client.end(true);
  }

  private attemptFailed(): void {
    this.failedAttempts++;
    if (this.options.onUnproven && this.failedAttempts >= (this.options.giveUpAfter ?? 2)) {
      this.options.onUnproven();
      return;
    }
    this.scheduleReconnect();
  }

  /** Sends one message to the peer; false (counted) if it cannot go now: catch-up will carry it. */
  send(payload: Buffer): boolean {
    const client = this.client;
    if (!client || this.state !== 'up' || !client.connected) {
      this.options.counters.increment('mesh.sends_deferred_link_down');
      return false;
    }
    if (this.inFlight >= (this.options.maxInFlight ?? 64)) {
      this.options.counters.increment('mesh.sends_deferred_backpressure');
      return false;
    }
    this.inFlight++;
    const { prefix, identity, peerId } = this.options;
    client.publish(meshTopic(prefix, identity.node.nodeId, peerId), payload, { qos: 1 }, () => { this.inFlight = Math.max(0, this.inFlight - 1); });
    return true;
  }

  async stop(): Promise<void> {
    const wasUp = this.state === 'up';
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    clearTimeout(this.proofTimer);
    this.socket?.destroy();
    this.socket = undefined;
    this.opening?.destroy(); // its connect never comes: dial() sees 'stopped' when the attempt fails
    this.opening = undefined;
    const client = this.client;
    this.client = undefined;
    // A clean goodbye: offline is published by us, not left to the will.
    if (client?.connected && wasUp) {
      await new Promise<void>((resolve) => {
        client.publish(`${this.options.prefix}/${this.options.identity.node.nodeId}/state`, 'offline', { qos: 1, retain: true }, () => resolve());
        setTimeout(resolve, 500).unref();
      });
    }
    await client?.endAsync(true).catch(() => undefined);
  }

  /**
   * The peer was just heard from (its link to us is up), so a link to it
   * likely works again too: retry now rather than at the end of a backoff
   * that may have grown to maxMs during an outage.
   */
  retrySoon(): void {
    if (this.state !== 'down') return;
    const soonest = (this.options.backoff ?? { initialMs: 1_000 }).initialMs * 1.2;
    if (this.retryAt - Date.now() <= soonest) return; // already due soon: do not keep pushing it back
    this.attempt = 0;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 1_000, maxMs: 30_000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt++;
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.state === 'stopped') return;
      this.state = 'connecting';
      // A fresh socket and a fresh single-use token bound to it, for every attempt.
      void this.dial();
    }, delay);
    this.retryTimer.unref();
  }
}
