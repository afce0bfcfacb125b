/**
 * The node's connection to a broker: its own embedded one by default, or an
 * external one (bus.url). Like Zigbee2MQTT, the node is an ordinary MQTT
 * client, so its last will ("offline", retained) works on any broker.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';

export interface BusClientOptions {
  url: string;
  clientId: string;
  /** Topic that carries "online"/"offline"; "offline" is the retained last will. */
  stateTopic: string;
  logger: Logger;
  counters: Counters;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export class BusClient {
  private client: MqttClient | undefined;
  private readonly handlers: { filter: string; handler: MessageHandler }[] = [];

  constructor(private readonly options: BusClientOptions) {}

  async start(): Promise<void> {
    const { connectAsync } = await import('mqtt');
    const { url, clientId, stateTopic, logger, counters } = this.options;
    try {
      this.client = await connectAsync(url, {
        clientId,
        clean: true,
        reconnectPeriod: 2_000,
        connectTimeout: 10_000,
        will: { topic: stateTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
      });
    } catch (err) {
      throw new ApiaryError(ErrorCodes.BUS_CONNECT_FAILED, `cannot connect to the MQTT broker at ${url}: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'check bus.url (or leave it out to use the embedded broker)', cause: err,
      });
    }
    this.client.on('message', (topic, payload) => {
      for (const { filter, handler } of this.handlers) {
        if (topicMatches(filter, topic)) handler(topic, payload);
      }
    });
    this.client.on('error', (err) => {
      counters.increment('bus.errors');
      logger.warn({ err: err.message }, 'MQTT bus error');
    });
    this.client.on('offline', () => logger.warn('MQTT bus offline; publishing resumes on reconnect'));
    this.client.on('reconnect', () => counters.increment('bus.reconnects'));
    await this.publish(stateTopic, 'online', { retain: true, qos: 1 });
  }

  async publish(topic: string, payload: string | Buffer, options: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('bus not started');
    await client.publishAsync(topic, payload, { qos: options.qos ?? 0, retain: options.retain ?? false });
    this.options.counters.increment('bus.published');
  }

  publishJson(topic: string, value: unknown, options: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    return this.publish(topic, JSON.stringify(value), options);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.handlers.push({ filter, handler });
    await this.client?.subscribeAsync(filter, { qos: 1 });
  }

  /** Publishes "offline" (retained) and disconnects cleanly, so the will is not needed. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.connected) await client.publishAsync(this.options.stateTopic, 'offline', { qos: 1, retain: true });
    } finally {
      await client.endAsync();
    }
  }
}

/** MQTT topic filter matching (MQTT 3.1.1 section 4.7: + one level, # the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
