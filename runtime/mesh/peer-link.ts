/**
 * One outbound link: an MQTT.js client connected to a neighbour's broker,
 * with a persistent session (clean = false), QoS 1, a last will that marks
 * us offline there, and reconnection with exponential backoff and jitter.
 *
 * The link only carries messages; it never holds the truth. A message that
 * cannot go now (link down, or too many unacknowledged) is not queued: it is
 * counted, and the peer gets the entries by catch-up, read from disk. So
 * neither MQTT.js's offline queue nor the broker's grows with an outage.
 */
import type { PeerCertificate } from 'node:tls';
import { connect, type MqttClient } from 'mqtt';
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';
import { makeLinkToken } from './link-token.js';
import type { MeshIdentity } from './mesh-identity.js';
import { meshTopic } from './mesh-protocol.js';

export type LinkState = 'connecting' | 'up' | 'down' | 'stopped';

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
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private retryAt = 0;
  private inFlight = 0;

  constructor(private readonly options: PeerLinkOptions) {}

  get peerId(): string {
    return this.options.peerId;
  }

  get url(): string {
    return this.options.url;
  }

  start(): void {
    const { identity, prefix, peerId } = this.options;
    const me = identity.node.nodeId;
    this.state = 'connecting';
    const client = connect(this.options.url, {
      protocolVersion: 4,
      clientId: `apiary-${me}`,
      clean: false,
      username: me,
      password: makeLinkToken(identity, peerId, this.options.now()),
      reconnectPeriod: 0, // our own backoff, below
      connectTimeout: 10_000,
      keepalive: 30,
      will: { topic: `${prefix}/${me}/state`, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...(this.options.pinnedCertificate ? pinnedTlsOptions(this.options.pinnedCertificate) : {}),
    });
    this.client = client;
    client.on('connect', () => {
      this.attempt = 0;
      this.inFlight = 0;
      this.state = 'up';
      this.lastUpAt = Date.now();
      this.lastError = undefined;
      client.publish(`${prefix}/${me}/state`, 'online', { qos: 1, retain: true });
      this.options.onUp();
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      this.options.counters.increment('mesh.link_errors');
    });
    client.on('close', () => {
      if (this.state === 'stopped') return;
      const wasUp = this.state === 'up';
      this.state = 'down';
      if (wasUp) this.options.onDown();
      this.scheduleReconnect();
    });
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
    this.state = 'stopped';
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    // A clean goodbye: offline is published by us, not left to the will.
    if (client?.connected) {
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
    if (this.state !== 'down' || !this.client) return;
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
      const client = this.client;
      if (!client || this.state === 'stopped') return;
      this.state = 'connecting';
      // A fresh single-use token for every attempt (the broker refuses replays).
      client.options.password = makeLinkToken(this.options.identity, this.options.peerId, this.options.now());
      client.reconnect();
    }, delay);
    this.retryTimer.unref();
  }
}
