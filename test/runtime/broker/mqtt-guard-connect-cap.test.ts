/**
 * Issue 10, finding 9, as a property of the wire guard: before a client's
 * CONNECT has been accepted, the guard never holds more than maxConnectBytes
 * of it, whatever bytes arrive and however they are split; it refuses with a
 * named reason instead, and never throws.
 */
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MqttGuard } from '../../../runtime/broker/mqtt-guard.js';
import { remainingLength } from '../../bench/mqtt-load.js';

const MAX_CONNECT = 2048;

/** A CONNECT fixed header (type 1, flags 0) with a random Remaining Length, then random bytes: what a hostile LAN device sends first. */
const hostileStart = fc.tuple(
  fc.integer({ min: 0, max: 268_435_455 }),
  fc.uint8Array({ maxLength: 64 }),
).map(([remaining, rest]) => Buffer.concat([Buffer.from([0x10]), remainingLength(remaining), Buffer.from(rest)]));
/** Well-formed CONNECTs of any size around the cap (explicit lengths: fast-check's arrays lean small). */
const validConnect = fc.tuple(fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 0, max: 255 })).map(([length, fill]) =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 0, username: 'u', password: Buffer.alloc(length, fill) }));
const noise = fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([length, pattern]) =>
  Buffer.alloc(length, Buffer.from(pattern)));
const stream = fc.oneof(hostileStart, validConnect, noise);

describe('MqttGuard before CONNECT', () => {
  it('never holds more than maxConnectBytes of a CONNECT, refuses instead, never throws (property)', () => {
    fc.assert(fc.property(stream, fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }), (bytes, cuts) => {
      const guard = new MqttGuard(300_000, MAX_CONNECT);
      let fed = 0;
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        const chunk = bytes.subarray(at, at + cut);
        at += chunk.length;
        if (chunk.length === 0) continue;
        fed += chunk.length;
        const { packets, rejection } = guard.feed(chunk);
        if (rejection) {
          expect(rejection.reason).toMatch(/^[a-z-]+$/);
          return;
        }
        if (packets.length > 0) {
          expect(packets[0]?.length).toBeLessThanOrEqual(MAX_CONNECT);
          return;
        }
        expect(fed).toBeLessThanOrEqual(MAX_CONNECT); // still waiting: only what a CONNECT within the cap may hold
      }
    }), { numRuns: 400 });
  });

  it('passes a CONNECT up to the cap and refuses one byte more from its header alone', () => {
    const connectOf = (size: number): Buffer => {
      const base = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 0, username: 'u', password: Buffer.alloc(0) });
      return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'c', keepalive: 0, username: 'u', password: Buffer.alloc(size - base.length - 1) });
    };
    expect(new MqttGuard(300_000, MAX_CONNECT).feed(connectOf(MAX_CONNECT)).packets).toHaveLength(1);
    const over = connectOf(MAX_CONNECT + 1);
    expect(over.length).toBe(MAX_CONNECT + 1);
    expect(new MqttGuard(300_000, MAX_CONNECT).feed(over.subarray(0, 4)).rejection?.reason).toBe('connect-oversized');
  });
});
