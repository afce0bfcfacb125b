/**
 * What the broker holds for good (issue 16's RSS budget): a real broker on a
 * loopback port delivering to a real MQTT.js subscriber must not make
 * mqtt-packet build its table of all 65,536 two-byte numbers (6 MB of heap).
 */
import { createRequire } from 'node:module';
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../../runtime/broker/embedded-broker.js';
import { Counters } from '../../../runtime/counters.js';

/** The table mqtt-packet's writer fills at its first packet unless writeToStream.cacheNumbers is false (the copy aedes uses). */
const numbers = createRequire(createRequire(import.meta.url).resolve('aedes'))('mqtt-packet/numbers.js') as { cache: Record<number, Buffer>; generateCache: () => void };

let broker: EmbeddedBroker | undefined;
afterEach(async () => {
  await broker?.stop();
  broker = undefined;
});

describe('the embedded broker\'s memory', () => {
  it('delivers with packet ids and lengths made as written, not from a 65,536-entry table', async () => {
    broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), counters: new Counters() });
    await broker.start();
    const sub = await connectAsync(broker.url, { protocolVersion: 4, clientId: 'sub', reconnectPeriod: 0 });
    const pub = await connectAsync(broker.url, { protocolVersion: 4, clientId: 'pub', reconnectPeriod: 0 });
    try {
      const got: { topic: string; payload: string; messageId: number | undefined }[] = [];
      sub.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), messageId: packet.messageId }));
      await sub.subscribeAsync('apiary/#', { qos: 1 });
      // A payload past 127 bytes takes a two-byte remaining length; QoS 1 gives each PUBLISH a packet id.
      for (let i = 0; i < 3; i += 1) await pub.publishAsync(`apiary/test/${i}`, 'x'.repeat(300 + i), { qos: 1 });
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(3);
      expect(got.map((m) => [m.topic, m.payload.length])).toEqual([['apiary/test/0', 300], ['apiary/test/1', 301], ['apiary/test/2', 302]]);
      expect(got.every((m) => typeof m.messageId === 'number' && m.messageId > 0)).toBe(true);
      expect(Object.keys(numbers.cache)).toHaveLength(0);
    } finally {
      await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
    }
  });

  it('the check can fail: the table, once built, holds 65,536 Buffers', () => {
    numbers.generateCache();
    try {
      expect(Object.keys(numbers.cache)).toHaveLength(65_536);
    } finally {
      for (const key of Object.keys(numbers.cache)) delete numbers.cache[Number(key)];
    }
  });
});
