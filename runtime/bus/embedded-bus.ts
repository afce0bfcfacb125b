/**
 * The node on its own embedded broker: publishes and subscribes in-process
 * through aedes, with no socket and no MQTT client to load or connect (this
 * saves about a tenth of a second of start-up on a fast machine, more on a
 * board). There is no last will here: when the node dies its broker dies with
 * it, and every client sees the connection drop.
 */
import type { EmbeddedBroker } from '../broker/embedded-broker.js';
import type { Counters } from '../counters.js';
import type { Bus, MessageHandler, PublishOptions } from './bus.js';

export class EmbeddedBus implements Bus {
  private readonly subscriptions: { filter: string; handler: MessageHandler; deliver: (packet: { topic: string; payload: Buffer | string }, done: () => void) => void }[] = [];
  private started = false;

  constructor(private readonly broker: EmbeddedBroker, private readonly stateTopic: string, private readonly counters: Counters) {}

  async start(): Promise<void> {
    this.started = true;
    await this.publish(this.stateTopic, 'online', { retain: true, qos: 1 });
  }

  async publish(topic: string, payload: string | Buffer, options: PublishOptions = {}): Promise<void> {
    if (!this.started) throw new Error('bus not started');
    await this.broker.publish(topic, payload, options);
    this.counters.increment('bus.published');
  }

  publishJson(topic: string, value: unknown, options: PublishOptions = {}): Promise<void> {
    return this.publish(topic, JSON.stringify(value), options);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    const deliver = (packet: { topic: string; payload: Buffer | string }, done: () => void) => {
      // Deliver after the broker's own bookkeeping, as a socket client would see it.
      setImmediate(() => handler(packet.topic, Buffer.from(packet.payload)));
      done();
    };
    this.subscriptions.push({ filter, handler, deliver });
    await this.broker.subscribe(filter, deliver);
  }

  async unsubscribe(filter: string, handler: MessageHandler): Promise<void> {
    const index = this.subscriptions.findIndex((s) => s.filter === filter && s.handler === handler);
    const [subscription] = index >= 0 ? this.subscriptions.splice(index, 1) : [];
    if (subscription) await this.broker.unsubscribe(filter, subscription.deliver);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    await this.publish(this.stateTopic, 'offline', { retain: true, qos: 1 });
    this.started = false;
    for (const { filter, deliver } of this.subscriptions.splice(0)) await this.broker.unsubscribe(filter, deliver);
  }
}
