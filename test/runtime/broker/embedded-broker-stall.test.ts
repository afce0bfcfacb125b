/**
 * A subscriber that stops reading, against a real broker on a loopback port:
 * real MQTT.js clients publish and subscribe, and the stalled subscriber is
 * a raw TCP socket that stops reading once subscribed, so the kernel's
 * buffers fill and the broker has to hold, drop or cut. Every wait is for a
 * condition, with room to spare; nothing asserts a timing.
 */
import net from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker, OUTGOING_DEFAULTS, type EmbeddedBrokerOptions } from '../../../runtime/broker/embedded-broker.js';
import { EventEmitter } from 'node:events';
import { Outbox, PacketFramer, type DropReason } from '../../../runtime/broker/outbox.js';
import { Counters } from '../../../runtime/counters.js';
import { RawSubscriber } from '../../bench/mqtt-load.js';

const logger = pino({ level: 'silent' });
const TOPIC = 'apiary/stall/test';
/** 16 KiB messages: the kernel's socket buffers (a few MiB) fill after a few hundred. */
const PAYLOAD = Buffer.alloc(16 * 1024, 0x61);
/** Far more than the kernel buffers for one socket (tcp_wmem max 4 MiB + the peer's receive buffer, 6 MiB at most). */
const MAX_MESSAGES = 4000;
const WAIT_MS = 20_000;

let counters: Counters;
let broker: EmbeddedBroker;
const clients: MqttClient[] = [];
const raws: RawSubscriber[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await broker.stop();
});

async function startBroker(options: Partial<EmbeddedBrokerOptions>): Promise<void> {
  counters = new Counters();
  broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters, ...options });
  await broker.start();
}

async function client(clientId: string): Promise<MqttClient> {
  const c = await connectAsync(broker.url, { protocolVersion: 4, clientId, reconnectPeriod: 0, keepalive: 0 });
  clients.push(c);
  return c;
}

/** A QoS 1 subscriber that counts what it receives on TOPIC. */
async function healthySubscriber(): Promise<{ received: () => number }> {
  const sub = await client('healthy');
  let received = 0;
  sub.on('message', (topic) => { if (topic === TOPIC) received += 1; });
  await sub.subscribeAsync(TOPIC, { qos: 1 });
  return { received: () => received };
}

async function stalledSubscriber(): Promise<RawSubscriber> {
  const raw = await RawSubscriber.connect(broker.port, 'stalled', TOPIC, 1);
  raws.push(raw);
  raw.pause(); // stops reading its socket: from here on the kernel buffers fill
  return raw;
}

async function waitFor(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const drops = (reason: string) => counters.get(`broker.dropped.${reason}`);

/**
 * Publishes QoS 1 messages (a few in flight, each resolved by its PUBACK)
 * until `enough()` holds, then `extra` more; returns how many were PUBACKed.
 */
async function publishUntil(pub: MqttClient, enough: () => boolean, extra: number): Promise<number> {
  let acked = 0;
  let after = -1;
  const inFlight = new Set<Promise<void>>();
  for (let sent = 0; sent < MAX_MESSAGES && after < extra; sent += 1) {
    if (after >= 0 || enough()) after += 1;
    const p: Promise<void> = pub.publishAsync(TOPIC, PAYLOAD, { qos: 1 }).then(() => { acked += 1; }).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (!enough()) throw new Error(`${MAX_MESSAGES} messages published and the condition never held`);
  return acked;
}

describe('EmbeddedBroker with a subscriber that stops reading', () => {
  it('keeps delivering to a healthy subscriber, drops and counts beyond the bound, and loses nothing silently', async () => {
    await startBroker({ maxQueuedMessages: 20, stallTimeoutMs: 0 });
    const healthy = await healthySubscriber();
    const stalled = await stalledSubscriber();
    const pub = await client('publisher');

    const published = await publishUntil(pub, () => drops('queue_full') > 0, 200);
    // Every PUBLISH was acknowledged although one subscriber reads nothing, and the healthy one got each of them.
    await waitFor(() => healthy.received() === published, 'the healthy subscriber to receive every message');
    expect(healthy.received()).toBe(published);
    expect(stalled.delivered).toBe(0);
    expect(broker.connectedClients).toBe(3); // stalled, not cut: stallTimeoutMs 0 never cuts
    expect(broker.outgoing()).toMatchObject({ waitingClients: 1, queuedMessages: 20 });

    // Once it reads again it gets everything that was not dropped; the rest is counted.
    stalled.resume();
    await waitFor(() => stalled.delivered + drops('queue_full') >= published && broker.outgoing().unacknowledged === 0, 'the stalled subscriber to catch up');
    expect(stalled.delivered + drops('queue_full')).toBe(published);
    expect(drops('stalled') + drops('closed')).toBe(0);
    expect(counters.get('broker.disconnected.stalled')).toBe(0);
    expect(broker.outgoing()).toEqual({ waitingClients: 0, queuedMessages: 0, queuedBytes: 0, unacknowledged: 0 });
  });

  it('cuts a subscriber that reads nothing for stallTimeoutMs and counts every message it did not get', async () => {
    // The stall clock starts once its socket refuses more; publishing ends a few dozen messages later, long before 3 s.
    await startBroker({ maxQueuedMessages: 20, stallTimeoutMs: 3000 });
    const healthy = await healthySubscriber();
    const stalled = await stalledSubscriber();
    const pub = await client('publisher');

    const published = await publishUntil(pub, () => drops('queue_full') > 0, 20);
    // Still connected: every message so far was routed to it, so each must come out as a count below.
    expect(counters.get('broker.disconnected.stalled')).toBe(0);
    await waitFor(() => counters.get('broker.disconnected.stalled') === 1 && broker.connectedClients === 2, 'the stalled subscriber to be cut');
    await waitFor(() => healthy.received() === published, 'the healthy subscriber to receive every message');
    expect(healthy.received()).toBe(published);
    // It never read a PUBLISH: each one was dropped over the bound, or cut with it (queued, or sent and never acknowledged).
    expect(stalled.delivered).toBe(0);
    expect(drops('queue_full')).toBeGreaterThan(0);
    expect(drops('stalled')).toBeGreaterThan(20);
    expect(drops('queue_full') + drops('stalled')).toBe(published);
    expect(drops('closed')).toBe(0);
    expect(broker.outgoing()).toEqual({ waitingClients: 0, queuedMessages: 0, queuedBytes: 0, unacknowledged: 0 });

    // The broker still serves: a new subscriber gets a new message.
    const again = await client('again');
    await again.subscribeAsync(TOPIC, { qos: 1 });
    const got = new Promise<string>((resolve) => again.once('message', (_t, payload) => resolve(payload.toString())));
    await pub.publishAsync(TOPIC, 'still here', { qos: 1 });
    expect(await got).toBe('still here');
  });

  it('counts what was still queued for a client that disconnects', async () => {
    await startBroker({ maxQueuedMessages: 20, stallTimeoutMs: 0 });
    const stalled = await stalledSubscriber();
    const pub = await client('publisher');
    const published = await publishUntil(pub, () => drops('queue_full') > 0, 0);
    expect(broker.outgoing().queuedMessages).toBe(20);
    stalled.close();
    await waitFor(() => broker.connectedClients === 1, 'the broker to see the stalled client close');
    expect(drops('closed')).toBe(20);
    expect(drops('queue_full')).toBeLessThan(published);
  });

  it('drops from a persistent session for good: what was not dropped comes back on reconnect, what was dropped never does', async () => {
    await startBroker({ maxQueuedMessages: 20, stallTimeoutMs: 0 });
    // A raw persistent-session subscriber (clean session 0) that reads its CONNACK and SUBACK, then nothing.
    const socket = net.connect(broker.port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    let answered = 0;
    const subscribed = new Promise<void>((resolve) => socket.on('data', (d: Buffer) => {
      answered += d.length;
      if (answered >= 4 + 5) resolve(); // CONNACK + SUBACK
    }));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'persistent', keepalive: 0 }));
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: TOPIC, qos: 1 }] }));
    await subscribed;
    socket.pause();
    const pub = await client('publisher');

    const published = await publishUntil(pub, () => drops('queue_full') > 0, 20);
    socket.destroy();
    await waitFor(() => broker.connectedClients === 1, 'the broker to see the persistent client go');
    expect(drops('closed')).toBe(0); // its unsent QoS 1 messages stay in the session

    const back = await connectAsync(broker.url, { protocolVersion: 4, clientId: 'persistent', clean: false, reconnectPeriod: 0, keepalive: 0 });
    clients.push(back);
    let received = 0;
    back.on('message', (topic) => { if (topic === TOPIC) received += 1; });
    await waitFor(() => received + drops('queue_full') >= published, "the session's messages to come back");
    expect(received + drops('queue_full')).toBe(published);
  });

  it('has bounds by default and refuses nonsense', async () => {
    expect(OUTGOING_DEFAULTS).toEqual({ maxQueuedMessages: 1000, maxQueuedBytes: 4 * 1024 * 1024, stallTimeoutMs: 30_000 });
    await expect(startBroker({ maxQueuedMessages: -1 })).rejects.toThrow(/maxQueuedMessages/);
    await expect(startBroker({ stallTimeoutMs: 1.5 })).rejects.toThrow(/stallTimeoutMs/);
    await startBroker({}); // for afterEach
  });
});

describe('PacketFramer', () => {
  it('reassembles packets written in pieces, strings included, and splits packets written together', () => {
    const framer = new PacketFramer();
    const out: Buffer[] = [];
    const emit = (p: Buffer) => out.push(Buffer.from(p));
    // PUBLISH QoS 1 to "a/b", id 7, payload "hi": as mqtt-packet writes it.
    for (const chunk of [Buffer.from([0x32]), Buffer.from([9]), Buffer.from([0, 3]), 'a/b', Buffer.from([0, 7]), Buffer.from('hi')]) framer.feed(chunk, emit);
    expect(out).toEqual([Buffer.from([0x32, 9, 0, 3, 0x61, 0x2f, 0x62, 0, 7, 0x68, 0x69])]);
    // Two PUBACKs and the first byte of a PINGRESP in one chunk, the rest in the next.
    framer.feed(Buffer.from([0x40, 2, 0, 1, 0x40, 2, 0, 2, 0xd0]), emit);
    expect(framer.pending).toBe(1);
    framer.feed(Buffer.from([0]), emit);
    expect(out.slice(1)).toEqual([Buffer.from([0x40, 2, 0, 1]), Buffer.from([0x40, 2, 0, 2]), Buffer.from([0xd0, 0])]);
    // A 200-byte body needs two bytes of Remaining Length.
    const body = Buffer.alloc(200, 1);
    framer.feed(Buffer.from([0x30, 0xc8]), emit);
    framer.feed(Buffer.from([0x01]), emit);
    framer.feed(body, emit);
    expect(out[4]).toEqual(Buffer.concat([Buffer.from([0x30, 0xc8, 0x01]), body]));
    expect(framer.pending).toBe(0);
  });
});

/** Enough of a net.Socket for an Outbox: write() refuses more while `full`; drain() empties it. */
class FakeSocket extends EventEmitter {
  written: Buffer[] = [];
  full = false;
  destroyed = false;
  writableEnded = false;
  reset = false;
  cork(): void {}
  uncork(): void {}
  write(packet: Buffer): boolean {
    this.written.push(packet);
    return !this.full;
  }
  drain(): void {
    this.full = false;
    this.emit('drain');
  }
  resetAndDestroy(): this {
    this.reset = true;
    this.destroyed = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

describe('Outbox', () => {
  const publish = (id: number) => Buffer.from([0x32, 5, 0, 1, 0x74, id >> 8, id & 0xff]); // QoS 1 to "t"
  const puback = Buffer.from([0x40, 2, 0, 9]);

  function outbox(limits: { maxQueuedMessages?: number; maxQueuedBytes?: number; stallTimeoutMs?: number } = {}) {
    const socket = new FakeSocket();
    const drops: Record<string, number> = {};
    let stalled = 0;
    const box = new Outbox(socket as unknown as net.Socket, { maxQueuedMessages: 2, maxQueuedBytes: 0, stallTimeoutMs: 0, ...limits }, {
      dropped: (reason: DropReason, packets) => { drops[reason] = (drops[reason] ?? 0) + packets.length; },
      stalled: () => { stalled += 1; },
    });
    return { socket, box, drops, stalled: () => stalled };
  }

  it('queues while the socket is full, drops PUBLISH beyond the bound but never a control packet, and sends the rest in order on drain', () => {
    const { socket, box, drops } = outbox();
    socket.full = true;
    box.write(publish(1)); // taken by the socket, which then reports full
    for (const id of [2, 3, 4]) box.write(publish(id));
    box.write(puback);
    expect(drops).toEqual({ queue_full: 1 });
    expect(box.stats).toMatchObject({ queuedPublishes: 2, queuedPackets: 3, waiting: true, unacknowledged: 1 });
    socket.drain();
    expect(socket.written).toEqual([publish(1), publish(2), publish(3), puback]);
    expect(box.stats).toMatchObject({ queuedPackets: 0, waiting: false, unacknowledged: 3 });
    box.acknowledged(1);
    box.acknowledged(3);
    expect(box.stats.unacknowledged).toBe(1);
  });

  it('cuts a socket that stays full for stallTimeoutMs, also after it drained once, and counts what the client never got', async () => {
    const { socket, box, drops, stalled } = outbox({ stallTimeoutMs: 50 });
    socket.full = true;
    box.write(publish(1));
    box.write(publish(2));
    socket.drain(); // it read once: publish 2 goes out, and the stall clock starts again
    socket.full = true;
    box.write(publish(3));
    box.write(publish(4));
    box.acknowledged(1);
    await waitFor(() => stalled() === 1, 'the stall cut');
    expect(socket.reset).toBe(true);
    // 2 and 3 written and never acknowledged, 4 still queued
    expect(drops).toEqual({ stalled: 3 });
    box.write(publish(5)); // routed after the cut
    box.close();
    expect(drops).toEqual({ stalled: 4 });
    expect(box.endReason).toBe('stalled');
  });
});
