/**
 * The node on an external broker (bus.url): an ordinary MQTT.js client, like
 * Zigbee2MQTT, so its last will ("offline", retained) tells every subscriber
 * when the node dies without saying goodbye. Reconnects on its own; MQTT.js
 * queues what is published while the broker is away.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { topicMatches, type Bus, type MessageHandler, type PublishOptions } from './bus.js';

export interface MqttBusOptions {
  url: string;
  clientId: string;
  /** Topic that carries "online"/"offline"; "offline" is the retained last will. */
  stateTopic: string;
  logger: Logger;
  counters: Counters;
}

export class MqttBus implements Bus {
  private client: MqttClient | undefined;
  private readonly handlers: { filter: string; handler: MessageHandler }[] = [];

  constructor(private readonly options: MqttBusOptions) {}

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
        hint: 'check bus.url and that the broker runs (or leave bus.url out to use the embedded broker)', cause: err,
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
    // After a reconnect the broker may have published our will: say online again.
    this.client.on('connect', () => {
      void this.publish(stateTopic, 'online', { retain: true, qos: 1 }).catch(() => counters.increment('bus.errors'));
    });
    await this.publish(stateTopic, 'online', { retain: true, qos: 1 });
  }

  async publish(topic: string, payload: string | Buffer, options: PublishOptions = {}): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('bus not started');
    await client.publishAsync(topic, payload, { qos: options.qos ?? 0, retain: options.retain ?? false });
    this.options.counters.increment('bus.published');
  }

  publishJson(topic: string, value: unknown, options: PublishOptions = {}): Promise<void> {
    return this.publish(topic, JSON.stringify(value), options);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.handlers.push({ filter, handler });
    await this.client?.subscribeAsync(filter, { qos: 1 });
  }

  async unsubscribe(filter: string, handler: MessageHandler): Promise<void> {
    const index = this.handlers.findIndex((h) => h.filter === filter && h.handler === handler);
    if (index >= 0) this.handlers.splice(index, 1);
    if (!this.handlers.some((h) => h.filter === filter)) await this.client?.unsubscribeAsync(filter);
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
