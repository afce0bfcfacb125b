/**
 * Issue 10, findings 9 and 3 (the broker's part): what a client can make a
 * LAN-facing broker hold, before and after it authenticates, against a real
 * broker on loopback, with raw sockets (several loopback source addresses)
 * and real MQTT.js clients. Each bound refuses and counts; honest clients
 * keep being served.
 */
import type net from 'node:net';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker, type EmbeddedBrokerOptions } from '../../../runtime/broker/embedded-broker.js';
import { Counters } from '../../../runtime/counters.js';
import { CONNACK_ACCEPTED, connectPacket, PINGREQ, PINGRESP, rawSocket, type RawSocket } from '../../support/raw-socket.js';

const logger = pino({ level: 'silent' });
let counters: Counters;
let broker: EmbeddedBroker;
const brokers: EmbeddedBroker[] = [];
const clients: MqttClient[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  for (const b of brokers.splice(0)) await b.stop();
});

async function startBroker(options: Partial<EmbeddedBrokerOptions> = {}): Promise<void> {
  counters = new Counters();
  broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters, ...options });
  brokers.push(broker);
  await broker.start();
}

async function client(options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  clients.push(c);
  return c;
}

const raw = (localAddress?: string): Promise<RawSocket> => rawSocket(broker.port, { sockets, ...(localAddress ? { localAddress } : {}) });

/** A raw connection that the broker accepted (CONNACK 0), or undefined if it closed it. */
async function rawConnected(localAddress: string, clientId: string): Promise<RawSocket | undefined> {
  const r = await raw(localAddress);
  r.socket.write(connectPacket(clientId));
  return (await r.receives(CONNACK_ACCEPTED)) ? r : undefined;
}

let checks = 0;
async function expectStillServing(): Promise<void> {
  const n = ++checks;
  const sub = await client({ clientId: `check-sub-${n}` });
  await sub.subscribeAsync(`check/${n}`, { qos: 1 });
  const got = new Promise<string>((resolve) => sub.once('message', (_t, p) => resolve(p.toString())));
  await (await client({ clientId: `check-pub-${n}` })).publishAsync(`check/${n}`, 'still here', { qos: 1 });
  expect(await got).toBe('still here');
}

describe('before authentication (finding 9)', () => {
  it('refuses an oversized CONNECT from its fixed header, before the body is buffered; a token-sized one passes', async () => {
    await startBroker({ connectTimeoutMs: 60_000 }); // the refusal must not wait for the connect timeout
    const big = await raw();
    big.socket.write(Buffer.from([0x10, 0x80, 0x80, 0x0c])); // CONNECT declaring 196 KiB, and nothing more
    expect(await big.closed).toEqual(Buffer.alloc(0));
    expect(counters.get('broker.rejected.connect-oversized')).toBe(1);
    // A CONNECT with 4 KiB of credentials (a link token is smaller) is within the 16 KiB default.
    const token = await raw();
    token.socket.write(connectPacket('token-sized', { username: 'u', password: Buffer.alloc(4096, 0x61) }));
    expect(await token.receives(CONNACK_ACCEPTED)).toBe(true);
    await expectStillServing();
  });

  it('closes many sockets that send a partial CONNECT, or none, once the connect timeout passes', async () => {
    await startBroker({ connectTimeoutMs: 300 });
    const partial = connectPacket('slow', { password: Buffer.alloc(8000, 0x62), username: 'u' });
    const slow = await Promise.all(Array.from({ length: 20 }, () => raw()));
    slow.forEach((s, i) => { if (i % 2 === 0) s.socket.write(partial.subarray(0, partial.length - 10)); });
    for (const s of slow) expect(await s.closed).toEqual(Buffer.alloc(0));
    expect(counters.get('broker.rejected.connect-timeout')).toBe(20);
    await expectStillServing();
  });

  it('caps open connections per remote address and in total, closing the extra ones at accept', async () => {
    await startBroker({ maxConnectionsPerAddress: 3, maxConnections: 7 });
    // One address opens five: three are served, two closed at once.
    const fromOne = await Promise.all(Array.from({ length: 5 }, (_, i) => rawConnected('127.0.0.2', `one-${i}`)));
    expect(fromOne.filter((s) => s !== undefined)).toHaveLength(3);
    expect(counters.get('broker.rejected.connections-per-address')).toBe(2);
    // Other addresses fill the total of seven; the eighth socket is closed, whatever its address.
    const fromTwo = await Promise.all(Array.from({ length: 3 }, (_, i) => rawConnected('127.0.0.3', `two-${i}`)));
    expect(fromTwo.every((s) => s !== undefined)).toBe(true);
    const seventh = await rawConnected('127.0.0.4', 'seventh');
    expect(seventh).toBeDefined();
    expect(await rawConnected('127.0.0.5', 'eighth')).toBeUndefined();
    expect(counters.get('broker.rejected.connections-total')).toBe(1);
    // A slot freed is a slot for the next client.
    seventh?.socket.destroy();
    await seventh?.closed;
    const honest = await client({ clientId: 'honest' });
    expect(honest.connected).toBe(true);
  });
});

describe('per-client budgets after authentication (finding 3)', () => {
  const qos2 = (messageId: number, topic: string, payload: Buffer): Buffer =>
    mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 2, messageId, retain: false, dup: false });

  it('closes a client holding more than maxInflightQos2 QoS 2 messages without PUBREL, refused ones included', async () => {
    await startBroker({ maxInflightQos2: 8 });
    const hog = await rawConnected('127.0.0.1', 'hog');
    const payload = Buffer.alloc(100_000, 0x61);
    // Refused topics ($SYS) and allowed ones alike: 12 QoS 2 PUBLISH packets, never a PUBREL.
    for (let id = 1; id <= 12; id++) hog?.socket.write(qos2(id, id % 2 === 0 ? '$SYS/x' : 'hog/x', payload));
    hog?.socket.write(PINGREQ);
    expect(await hog?.receives(PINGRESP)).toBe(false); // closed before it got there
    expect(counters.get('broker.rejected.inflight-qos2')).toBe(1);
    await expectStillServing();
  });

  it('keeps only the packet id of a QoS 2 message awaiting PUBREL, not its payload', async () => {
    await startBroker();
    const holder = await rawConnected('127.0.0.1', 'holder');
    holder?.socket.write(qos2(7, 'held/x', Buffer.alloc(200_000, 0x61)));
    expect(await holder?.receives(Buffer.from([0x50, 0x02, 0x00, 0x07]))).toBe(true); // PUBREC 7
    // aedes's own store, as it answers a resent PUBLISH or the PUBREL [MQTT-4.3.3-2].
    const store = (broker as unknown as { aedes: { persistence: { incomingGetPacket(c: { id: string }, p: { messageId: number }): Promise<{ payload: Buffer; messageId: number }> } } }).aedes.persistence;
    const kept = await store.incomingGetPacket({ id: 'holder' }, { messageId: 7 });
    expect(kept.messageId).toBe(7);
    expect(kept.payload.length).toBe(0);
  });

  it('serves an honest QoS 2 publisher that keeps a window of in-flight messages', async () => {
    await startBroker({ maxInflightQos2: 100 });
    const sub = await client({ clientId: 'sub' });
    let received = 0;
    sub.on('message', () => { received += 1; });
    await sub.subscribeAsync('honest/#', { qos: 2 });
    const pub = await client({ clientId: 'pub' });
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publishAsync(`honest/${batch}`, `m${i}`, { qos: 2 })));
    }
    await expect.poll(() => received, { timeout: 10_000 }).toBe(500);
    expect(pub.connected).toBe(true);
    expect(counters.get('broker.rejected.inflight-qos2')).toBe(0);
  });

  it('bounds retained messages per client (count and bytes) and over all clients; clearing frees room; the node is not charged', async () => {
    await startBroker({ retained: { perClientMessages: 3, perClientBytes: 1000, totalMessages: 5, totalBytes: 1024 * 1024 } });
    const a = await client({ clientId: 'a' });
    const b = await client({ clientId: 'b' });
    for (const n of [1, 2, 3, 4]) await a.publishAsync(`r/a/${n}`, `a${n}`, { qos: 1, retain: true });
    expect(counters.get('broker.rejected.retained-client')).toBe(1); // r/a/4
    await a.publishAsync('r/a/1', 'a1 again', { qos: 1, retain: true }); // a replacement takes no more room
    await a.publishAsync('r/a/2', Buffer.alloc(2000, 0x61), { qos: 1, retain: true }); // over 1000 bytes
    expect(counters.get('broker.rejected.retained-client')).toBe(2);
    await a.publishAsync('r/a/3', '', { qos: 1, retain: true }); // cleared: room for one more
    await a.publishAsync('r/a/4', 'a4', { qos: 1, retain: true });
    for (const n of [1, 2, 3]) await b.publishAsync(`r/b/${n}`, `b${n}`, { qos: 1, retain: true });
    expect(counters.get('broker.rejected.retained-total')).toBe(1); // r/b/3: five held in all
    await a.publishAsync('r/b/2', '', { qos: 1, retain: true }); // clearing is never over budget, even for a client at its bound
    for (let n = 0; n < 10; n++) await broker.publish(`r/node/${n}`, `node${n}`, { retain: true }); // the node's own
    expect(a.connected && b.connected).toBe(true);

    const late = await client({ clientId: 'late' });
    const retained: string[] = [];
    late.on('message', (topic, payload, packet) => { if (packet.retain) retained.push(`${topic}=${payload.toString()}`); });
    await late.subscribeAsync('r/#', { qos: 1 });
    await expect.poll(() => retained.length).toBe(14);
    expect(retained.filter((m) => !m.startsWith('r/node/')).sort()).toEqual(['r/a/1=a1 again', 'r/a/2=a2', 'r/a/4=a4', 'r/b/1=b1']);
    expect(counters.get('broker.rejected.retained-client') + counters.get('broker.rejected.retained-total')).toBe(3);
  });

  it('bounds what waits for a persistent session while its client is away, per client and in total', async () => {
    await startBroker({ maxQueuedMessages: 10, maxOfflineQueuedBytes: 15 * 100 });
    // First the per-client bound alone: 'solo' is away, 30 messages, 10 kept.
    const solo = await client({ clientId: 'solo', clean: false });
    await solo.subscribeAsync('solo/#', { qos: 1 });
    await solo.endAsync();
    const first = await client({ clientId: 'first-pub' });
    for (let n = 0; n < 30; n++) await first.publishAsync(`solo/${n}`, '', { qos: 1 }); // empty: no bytes towards the total below
    expect(counters.get('broker.dropped.offline_queue_full')).toBe(20);
    const soloBack = await client({ clientId: 'solo', clean: false });
    const soloGot: string[] = [];
    soloBack.on('message', (topic) => soloGot.push(topic));
    await expect.poll(() => soloGot.length).toBe(10);
    expect(soloGot).toEqual(Array.from({ length: 10 }, (_, n) => `solo/${n}`));
    await soloBack.endAsync(true);
    const away = await client({ clientId: 'away', clean: false });
    await away.subscribeAsync('q/#', { qos: 1 });
    const other = await client({ clientId: 'other', clean: false });
    await other.subscribeAsync('q/#', { qos: 1 });
    await away.endAsync();
    await other.endAsync();
    const pub = await client({ clientId: 'pub' });
    for (let n = 0; n < 30; n++) await pub.publishAsync(`q/${n}`, Buffer.alloc(100, 0x61), { qos: 1 });
    // Both queue each message until the 1500-byte total is held (15 messages: 'away' 8, 'other' 7); the rest is dropped and counted.
    expect(counters.get('broker.dropped.offline_queue_full')).toBe(20 + 45);
    const back = await client({ clientId: 'away', clean: false });
    const got: string[] = [];
    back.on('message', (topic) => got.push(topic));
    await expect.poll(() => got.length).toBe(8);
    expect(got).toEqual(Array.from({ length: 8 }, (_, n) => `q/${n}`));
    // Delivered and acknowledged: room again for the next.
    await pub.publishAsync('q/after', 'x', { qos: 1 });
    await expect.poll(() => got.at(-1)).toBe('q/after');
  });

  it('bounds the topic filters one connection holds; unsubscribing frees room', async () => {
    await startBroker({ maxSubscriptionsPerClient: 5 });
    const greedy = await client({ clientId: 'greedy' });
    const filters = Object.fromEntries(Array.from({ length: 8 }, (_, n) => [`s/${n}`, { qos: 0 as const }]));
    const refusal = (await greedy.subscribeAsync(filters).catch((err: unknown) => err)) as { packet?: { granted: number[] } };
    expect(refusal.packet?.granted).toEqual([0, 0, 0, 0, 0, 0x80, 0x80, 0x80]);
    expect(counters.get('broker.rejected.subscriptions-client')).toBe(3);
    await greedy.subscribeAsync('s/0'); // held already: no more room needed
    await greedy.unsubscribeAsync('s/1');
    expect((await greedy.subscribeAsync('s/7'))[0]?.qos).toBe(0);
    expect(greedy.connected).toBe(true);
    await expectStillServing();
  });
});
