/**
 * Property-based tests (fast-check) of the wire semantics layer
 * (connection-semantics.ts, mqtt31.ts): whatever a client sends, what the
 * guard lets through never makes it throw, and what it hands aedes for an
 * MQTT 3.1 client is something aedes's parser (mqtt-packet) accepts.
 */
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { SessionRegistry } from '../../../runtime/broker/connection-semantics.js';
import { MqttGuard } from '../../../runtime/broker/mqtt-guard.js';

const RUNS = 300;

/** Packets a client sends, valid for mqtt-packet; the tests then set random flag bits. */
const clientPacket: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({ cmd: fc.constant('subscribe' as const), messageId: fc.integer({ min: 1, max: 65_535 }), subscriptions: fc.array(fc.record({ topic: fc.constantFrom('a', 'a/+', 'a/#', '+/b'), qos: fc.constantFrom(0 as const, 1 as const, 2 as const) }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ cmd: fc.constant('unsubscribe' as const), messageId: fc.integer({ min: 1, max: 65_535 }), unsubscriptions: fc.array(fc.constantFrom('a', 'a/#'), { minLength: 1, maxLength: 2 }) }),
  fc.record({ cmd: fc.constant('publish' as const), topic: fc.constantFrom('a', 'a/b', 'a//b'), payload: fc.string(), qos: fc.constantFrom(0 as const, 1 as const, 2 as const), messageId: fc.integer({ min: 1, max: 65_535 }), retain: fc.boolean(), dup: fc.boolean() })
    .map((p) => (p.qos === 0 ? { ...p, messageId: undefined, dup: false } : p)),
  fc.record({ cmd: fc.constantFrom('puback' as const, 'pubrec' as const, 'pubrel' as const, 'pubcomp' as const), messageId: fc.integer({ min: 1, max: 65_535 }) }),
  fc.constant({ cmd: 'pingreq' as const }),
);

function withHeaderFlags(packet: Packet, flags: number): Buffer {
  const bytes = Buffer.from(mqttPacket.generate(packet));
  if (packet.cmd !== 'publish') bytes[0] = ((bytes[0] as number) & 0xf0) | flags;
  else bytes[0] = ((bytes[0] as number) & 0xf7) | (flags & 0x08); // DUP only: QoS and retain stay as generated
  return bytes;
}

function connect31(flagBits: number): Buffer {
  const bytes = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: 'fuzz-client-with-a-long-id', keepalive: 0 }));
  bytes[11] = ((bytes[11] as number) & ~0x39) | (flagBits & 0x39); // reserved bit, will QoS and retain (no will flag)
  return bytes;
}

/** Every packet the guard lets through, as the semantics layer hands it to aedes; the rejection if one came. */
function throughGuard(chunks: Buffer[]): { toAedes: Buffer[]; rejected: boolean } {
  const guard = new MqttGuard(300_000);
  const semantics = new SessionRegistry().connection();
  const toAedes: Buffer[] = [];
  for (const chunk of chunks) {
    const { packets, rejection } = guard.feed(chunk);
    for (const packet of packets) {
      const out = semantics.inbound(packet, guard.version);
      if (!Buffer.isBuffer(out)) return { toAedes, rejected: true };
      toAedes.push(out);
    }
    if (rejection) return { toAedes, rejected: true };
  }
  return { toAedes, rejected: false };
}

describe('broker wire semantics, property-based', () => {
  it('hands aedes only packets its parser accepts, for any flag bits an MQTT 3.1 client sets', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0x3f }), fc.array(fc.tuple(clientPacket, fc.integer({ min: 0, max: 15 })), { maxLength: 8 }), (connectFlags, packets) => {
      const { toAedes } = throughGuard([connect31(connectFlags), ...packets.map(([p, flags]) => withHeaderFlags(p, flags))]);
      const parser = mqttPacket.parser();
      const errors: Error[] = [];
      let parsed = 0;
      parser.on('error', (err: Error) => errors.push(err));
      parser.on('packet', () => { parsed += 1; });
      for (const packet of toAedes) parser.parse(packet);
      expect(errors).toEqual([]);
      expect(parsed).toBe(toAedes.length);
      expect(toAedes.length).toBe(1 + packets.length); // a 3.1 client is refused none of these (no 3.1.1-only rule applies)
    }), { numRuns: RUNS });
  });

  it('never throws on random or mutated bytes after a CONNECT, of either protocol level', () => {
    const connect311 = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'fuzz', keepalive: 0 }));
    fc.assert(fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (v31, chunks) => {
      expect(() => throughGuard([v31 ? connect31(0) : connect311, ...chunks.map((c) => Buffer.from(c))])).not.toThrow();
    }), { numRuns: RUNS });
  });

  it('rewrites what the broker sends without changing its length, whatever the packet ids and flags', () => {
    const serverPacket: fc.Arbitrary<Packet> = fc.oneof(
      fc.record({ cmd: fc.constant('connack' as const), returnCode: fc.integer({ min: 0, max: 5 }), sessionPresent: fc.boolean() }),
      fc.record({ cmd: fc.constant('publish' as const), topic: fc.constantFrom('a', 'a/b'), payload: fc.string(), qos: fc.constantFrom(1 as const, 2 as const), messageId: fc.integer({ min: 1, max: 8 }), retain: fc.boolean(), dup: fc.boolean() }),
      fc.record({ cmd: fc.constant('publish' as const), topic: fc.constant('q0'), payload: fc.string(), qos: fc.constant(0 as const), retain: fc.boolean(), dup: fc.constant(false) }),
      fc.record({ cmd: fc.constant('pubrel' as const), messageId: fc.integer({ min: 1, max: 8 }) }),
    );
    const ack = fc.record({ cmd: fc.constantFrom('puback' as const, 'pubrec' as const, 'pubcomp' as const), messageId: fc.integer({ min: 1, max: 8 }) });
    fc.assert(fc.property(fc.array(fc.oneof(serverPacket.map((p) => ({ out: p })), ack.map((p) => ({ in: p }))), { maxLength: 20 }), (steps) => {
      const registry = new SessionRegistry(2);
      const semantics = registry.connection();
      const connect = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'fuzz', keepalive: 0 }));
      semantics.inbound(connect, 4);
      for (const step of steps) {
        if ('out' in step) {
          const bytes = Buffer.from(mqttPacket.generate(step.out));
          const sent = semantics.outbound(bytes);
          expect(sent.length).toBe(bytes.length);
          expect((sent[0] as number) >> 4).toBe((bytes[0] as number) >> 4);
        } else {
          const result = semantics.inbound(Buffer.from(mqttPacket.generate(step.in)), 4);
          if (!Buffer.isBuffer(result)) expect(result.reason).toBe('wrong-ack');
        }
      }
    }), { numRuns: RUNS });
  });
});
