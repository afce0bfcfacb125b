/**
 * The shared contract of every Bus implementation, against a real aedes
 * broker on a loopback port and a real MQTT.js client on the other side.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../../runtime/broker/embedded-broker.js';
import { topicMatches, type Bus } from '../../../runtime/bus/bus.js';
import { EmbeddedBus } from '../../../runtime/bus/embedded-bus.js';
import { MqttBus } from '../../../runtime/bus/mqtt-bus.js';
import { Counters } from '../../../runtime/counters.js';

const logger = pino({ level: 'silent' });
const STATE = 'apiary/testnode/state';

const implementations: { name: string; make: (broker: EmbeddedBroker, counters: Counters) => Bus }[] = [
  { name: 'EmbeddedBus', make: (broker, counters) => new EmbeddedBus(broker, STATE, counters) },
  { name: 'MqttBus', make: (broker, counters) => new MqttBus({ url: broker.url, clientId: 'apiary-testnode', stateTopic: STATE, logger, counters }) },
];

function nextMessage(client: MqttClient, filter: string): Promise<{ topic: string; payload: string; retain: boolean }> {
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
      if (!topicMatches(filter, topic)) return;
      client.off('message', on);
      resolve({ topic, payload: payload.toString(), retain: packet.retain });
    };
    client.on('message', on);
  });
}

describe.each(implementations)('Bus contract: $name', ({ make }) => {
  let broker: EmbeddedBroker;
  let bus: Bus;
  let counters: Counters;
  let outside: MqttClient;

  beforeEach(async () => {
    counters = new Counters();
    broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters });
    await broker.start();
    bus = make(broker, counters);
    await bus.start();
    outside = await connectAsync(broker.url, { clientId: 'outside' });
  });
  afterEach(async () => {
    await outside.endAsync();
    await bus.stop();
    await broker.stop();
  });

  it('is online (retained) once started', async () => {
    const late = nextMessage(outside, STATE);
    await outside.subscribeAsync(STATE);
    expect(await late).toMatchObject({ payload: 'online', retain: true });
  });

  it('delivers what it publishes to outside subscribers, and keeps retained messages', async () => {
    await outside.subscribeAsync('apiary/testnode/readings/#');
    const live = nextMessage(outside, 'apiary/testnode/readings/#');
    await bus.publishJson('apiary/testnode/readings/temperature', { value: 34.5 });
    expect(JSON.parse((await live).payload)).toEqual({ value: 34.5 });
    await bus.publish('apiary/testnode/decisions/x', 'raised', { retain: true, qos: 1 });
    const late = await connectAsync(broker.url);
    const retained = nextMessage(late, 'apiary/testnode/decisions/x');
    await late.subscribeAsync('apiary/testnode/decisions/x');
    expect(await retained).toMatchObject({ payload: 'raised', retain: true });
    await late.endAsync();
    expect(counters.get('bus.published')).toBeGreaterThanOrEqual(3);
  });

  it('hands matching messages from outside to its subscribers, and only those', async () => {
    const got: string[] = [];
    await bus.subscribe('apiary/testnode/cmd/#', (topic, payload) => got.push(`${topic}=${payload.toString()}`));
    await outside.publishAsync('apiary/other/cmd/status', 'no', { qos: 1 });
    await outside.publishAsync('apiary/testnode/cmd/status', 'yes', { qos: 1 });
    await expect.poll(() => got).toEqual(['apiary/testnode/cmd/status=yes']);
  });

  it('delivers nothing more to a handler once unsubscribed, and still to the others', async () => {
    const gone: string[] = [];
    const kept: string[] = [];
    const goneHandler = (_topic: string, payload: Buffer) => gone.push(payload.toString());
    await bus.subscribe('apiary/testnode/cmd/#', goneHandler);
    await bus.subscribe('apiary/testnode/cmd/+', (_topic, payload) => kept.push(payload.toString()));
    await outside.publishAsync('apiary/testnode/cmd/a', 'one', { qos: 1 });
    await expect.poll(() => [gone, kept]).toEqual([['one'], ['one']]);
    await bus.unsubscribe('apiary/testnode/cmd/#', goneHandler);
    await outside.publishAsync('apiary/testnode/cmd/a', 'two', { qos: 1 });
    await expect.poll(() => kept).toEqual(['one', 'two']);
    expect(gone).toEqual(['one']);
  });

  it('says offline (retained) when stopped', async () => {
    await bus.stop();
    const late = nextMessage(outside, STATE);
    await outside.subscribeAsync(STATE);
    expect(await late).toMatchObject({ payload: 'offline', retain: true });
  });
});

describe('MqttBus last will', () => {
  it('leaves "offline" retained when the node vanishes, and says online again after reconnecting', async () => {
    const counters = new Counters();
    const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters });
    await broker.start();
    const bus = new MqttBus({ url: broker.url, clientId: 'apiary-vanishing', stateTopic: STATE, logger, counters });
    await bus.start();
    // Simulate a crash: the TCP connection dies with no DISCONNECT packet.
    (bus as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    const watcher = await connectAsync(broker.url);
    await expect.poll(async () => {
      const state = nextMessage(watcher, STATE);
      await watcher.unsubscribeAsync(STATE);
      await watcher.subscribeAsync(STATE);
      return (await state).payload;
    }).toBe('offline');
    // MQTT.js reconnects by itself, and the bus says online again.
    await expect.poll(async () => {
      const state = nextMessage(watcher, STATE);
      await watcher.unsubscribeAsync(STATE);
      await watcher.subscribeAsync(STATE);
      return (await state).payload;
    }, { timeout: 10_000 }).toBe('online');
    await watcher.endAsync();
    await bus.stop();
    await broker.stop();
  });

  it('matches MQTT topic filters as the spec says', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });
});
