/**
 * The embedded broker's access policy and MQTT 3.1.1 strictness, against a
 * real broker on a loopback port: real MQTT.js clients (protocol 4) for the
 * policy, raw sockets for bytes no client library would send. Every case
 * checks the reply (CONNACK/SUBACK code or the close), the counter, and that
 * a fresh client is still served afterwards.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopbackAddress, openLoopbackPolicy, type BrokerAccessPolicy } from '../../../runtime/broker/broker-access.js';
import { EmbeddedBroker, type EmbeddedBrokerOptions } from '../../../runtime/broker/embedded-broker.js';
import { Counters } from '../../../runtime/counters.js';

const logger = pino({ level: 'silent' });
const PEER = 'aaaaaaaaaaaa';

/** Anonymous loopback clients are local; 'peer-a'/'good' is node aaaaaaaaaaaa, which may publish only under its own prefix. */
const testPolicy: BrokerAccessPolicy = {
  authenticate: ({ username, password, remoteAddress }) => {
    if (username === undefined) return isLoopbackAddress(remoteAddress) ? { kind: 'local', id: 'local' } : { refused: 'not-authorized' };
    if (username !== 'peer-a') return { refused: 'not-authorized' };
    return password?.toString() === 'good' ? { kind: 'peer', id: PEER } : { refused: 'bad-credentials' };
  },
  canPublish: (principal, topic) => principal.kind === 'local' || topic.startsWith(`apiary/${principal.id}/`),
  canSubscribe: (principal, filter) => principal.kind === 'local' || filter.startsWith('apiary/'),
};

let broker: EmbeddedBroker;
let counters: Counters;
const brokers: EmbeddedBroker[] = [];
const clients: MqttClient[] = [];
const sockets: net.Socket[] = [];

async function startBroker(options: Partial<EmbeddedBrokerOptions> = {}): Promise<EmbeddedBroker> {
  counters = new Counters();
  broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters, access: testPolicy, ...options });
  brokers.push(broker);
  await broker.start();
  return broker;
}

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  for (const b of brokers.splice(0)) await b.stop();
});

async function client(options: IClientOptions = {}, url = broker.url): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  clients.push(c);
  return c;
}

function collect(c: MqttClient): { topic: string; payload: string; retain: boolean }[] {
  const seen: { topic: string; payload: string; retain: boolean }[] = [];
  c.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return seen;
}

function nextMessage(c: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve(payload.toString());
    };
    c.on('message', on);
  });
}

let checks = 0;
/** The broker keeps serving: a fresh subscriber and publisher still talk. */
async function expectStillServing(): Promise<void> {
  const n = ++checks;
  const sub = await client({ clientId: `check-sub-${n}` });
  await sub.subscribeAsync('apiary/check/#', { qos: 1 });
  const pub = await client({ clientId: `check-pub-${n}` });
  const got = nextMessage(sub, `apiary/check/${n}`);
  await pub.publishAsync(`apiary/check/${n}`, 'still here', { qos: 1 });
  expect(await got).toBe('still here');
}

interface RawSocket {
  socket: net.Socket;
  /** Everything the broker sent, once it closed the connection. */
  closed: Promise<Buffer>;
  /** Resolves once the broker has sent at least n bytes in all. */
  received(n: number): Promise<void>;
}

/** A raw TCP connection that records every byte the broker sends and when it closes. */
async function rawSocket(host = '127.0.0.1', port = broker.port): Promise<RawSocket> {
  const socket = net.connect(port, host);
  sockets.push(socket);
  socket.on('error', () => undefined); // a reset is as good as a close here
  const chunks: Buffer[] = [];
  let length = 0;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    length += d.length;
    socket.emit('apiary-received');
  });
  const closed = new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
  const received = (n: number): Promise<void> => new Promise((resolve) => {
    const check = (): void => {
      if (length < n) return;
      socket.off('apiary-received', check);
      resolve();
    };
    socket.on('apiary-received', check);
    check();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed, received };
}

/** A raw connection past a successful CONNECT/CONNACK. */
async function connectedRawSocket(): Promise<RawSocket> {
  const raw = await rawSocket();
  raw.socket.write(CONNECT);
  await raw.received(4);
  return raw;
}

const connack = (code: number): Buffer => Buffer.from([0x20, 0x02, 0x00, code]);
const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'raw', keepalive: 0 });
/** CONNECT with its flags byte (offset 9 for 'MQTT' and a short packet) replaced. */
function connectWithFlags(packet: Buffer, set: number, clear: number): Buffer {
  const copy = Buffer.from(packet);
  copy[9] = ((copy[9] as number) | set) & ~clear;
  return copy;
}
const publishRaw = (topic: Buffer, payload = 'x'): Buffer => Buffer.concat([Buffer.from([0x30, 2 + topic.length + payload.length, 0x00, topic.length]), topic, Buffer.from(payload)]);
const SUBSCRIBE = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'apiary/#', qos: 0 }] });

describe('isLoopbackAddress and openLoopbackPolicy', () => {
  it('knows loopback in every form Node reports it', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['10.0.0.2', '::ffff:192.168.1.5', 'fe80::1', '', undefined, 'localhost']) expect(isLoopbackAddress(a)).toBe(false);
  });

  it('lets anonymous loopback clients do anything and refuses every other address', () => {
    const policy = openLoopbackPolicy();
    const local = policy.authenticate({ clientId: 'ha', username: undefined, password: undefined, remoteAddress: '::ffff:127.0.0.1' });
    expect(local).toEqual({ kind: 'local', id: 'ha' });
    expect(policy.authenticate({ clientId: 'x', username: 'u', password: Buffer.from('p'), remoteAddress: '192.168.1.5' })).toEqual({ refused: 'not-authorized' });
    expect(policy.authenticate({ clientId: 'x', username: undefined, password: undefined, remoteAddress: undefined })).toEqual({ refused: 'not-authorized' });
    if (!('refused' in local)) expect(policy.canPublish(local, 'any/topic') && policy.canSubscribe(local, '#')).toBe(true);
  });
});

describe('EmbeddedBroker access policy', () => {
  it('refuses a wrong password with CONNACK 4 and an unknown user with CONNACK 5', async () => {
    await startBroker();
    await expect(client({ username: 'peer-a', password: 'bad' })).rejects.toMatchObject({ code: 4 });
    expect(counters.get('broker.rejected.bad-credentials')).toBe(1);
    const raw = await rawSocket();
    raw.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'm', keepalive: 0, username: 'mallory', password: Buffer.from('x') }));
    expect(await raw.closed).toEqual(connack(5));
    expect(counters.get('broker.rejected.not-authorized')).toBe(1);
    await expectStillServing();
  });

  it('refuses non-loopback clients by default (openLoopbackPolicy)', async (ctx) => {
    const lan = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
    if (!lan) return ctx.skip('this machine has no non-loopback IPv4 address to connect from');
    await startBroker({ host: '0.0.0.0', access: undefined });
    const raw = await rawSocket(lan.address);
    raw.socket.write(CONNECT);
    expect(await raw.closed).toEqual(connack(5));
    expect(counters.get('broker.rejected.not-authorized')).toBe(1);
    await expectStillServing(); // over loopback, anonymous
  });

  it('drops a refused PUBLISH like mosquitto: QoS 1/2 still acknowledged, nothing routed or retained, connection kept', async () => {
    await startBroker();
    const local = await client({ clientId: 'local' });
    await local.subscribeAsync('apiary/#', { qos: 1 });
    const seen = collect(local);
    const peer = await client({ clientId: 'peer', username: 'peer-a', password: 'good' });
    await peer.publishAsync('apiary/bbbbbbbbbbbb/state', 'forged', { qos: 0 });
    await peer.publishAsync('apiary/bbbbbbbbbbbb/state', 'forged', { qos: 1, retain: true }); // resolves on PUBACK
    await peer.publishAsync('apiary/bbbbbbbbbbbb/state', 'forged', { qos: 2 }); // resolves on PUBCOMP
    await peer.publishAsync('$SYS/fake', 'forged', { qos: 1 });
    expect(counters.get('broker.rejected.publish')).toBe(4);
    const own = nextMessage(local, `apiary/${PEER}/state`);
    await peer.publishAsync(`apiary/${PEER}/state`, 'mine', { qos: 1 });
    expect(await own).toBe('mine');
    expect(seen.map((m) => m.payload)).toEqual(['mine']);
    expect(peer.connected).toBe(true);
    // The refused retained message was not stored.
    const late = await client({ clientId: 'late' });
    const retained = collect(late);
    await late.subscribeAsync('apiary/#');
    const sentinel = nextMessage(late, 'apiary/sentinel');
    await local.publishAsync('apiary/sentinel', 'end');
    await sentinel;
    expect(retained.filter((m) => m.retain)).toEqual([]);
    await expectStillServing();
  });

  it('answers a refused SUBSCRIBE filter with SUBACK 0x80 and grants the rest', async () => {
    await startBroker();
    const peer = await client({ clientId: 'peer', username: 'peer-a', password: 'good' });
    // MQTT.js rejects when any filter is refused, carrying the SUBACK.
    const refusal = (await peer.subscribeAsync({ 'apiary/#': { qos: 1 }, 'homeassistant/#': { qos: 1 } }).catch((err: unknown) => err)) as { packet?: { granted: number[] } };
    expect(refusal.packet?.granted).toEqual([1, 0x80]);
    expect(counters.get('broker.rejected.subscribe')).toBe(1);
    expect(peer.connected).toBe(true);
    await expectStillServing();
  });

  it('lets in-process publish and subscribe bypass the policy', async () => {
    await startBroker();
    const inProcess: string[] = [];
    await broker.subscribe('apiary/#', (packet, done) => {
      inProcess.push(`${packet.topic}=${packet.payload.toString()}`);
      done();
    });
    const peer = await client({ clientId: 'peer', username: 'peer-a', password: 'good' });
    await peer.subscribeAsync('apiary/#');
    const got = nextMessage(peer, 'apiary/bbbbbbbbbbbb/cmd');
    await broker.publish('apiary/bbbbbbbbbbbb/cmd', 'from the node'); // a topic the peer may not publish to
    expect(await got).toBe('from the node');
    await peer.publishAsync('apiary/bbbbbbbbbbbb/cmd', 'forged', { qos: 1 });
    await peer.publishAsync(`apiary/${PEER}/x`, 'ok', { qos: 1 });
    expect(inProcess).toEqual(['apiary/bbbbbbbbbbbb/cmd=from the node', `apiary/${PEER}/x=ok`]);
  });

  it('refuses when the policy throws, without crashing', async () => {
    await startBroker({ access: { ...testPolicy, authenticate: () => { throw new Error('policy bug'); } } });
    const raw = await rawSocket();
    raw.socket.write(CONNECT);
    expect(await raw.closed).toEqual(connack(5));
    expect(counters.get('broker.rejected.not-authorized')).toBe(1);
  });
});

describe('EmbeddedBroker MQTT 3.1.1 strictness', () => {
  it('refuses an empty client id without clean session with CONNACK 0x02 [MQTT-3.1.3-8], allows it with clean session', async () => {
    await startBroker();
    const emptyId = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: '', keepalive: 0 });
    const raw = await rawSocket();
    raw.socket.write(connectWithFlags(emptyId, 0, 0x02));
    expect(await raw.closed).toEqual(connack(2));
    expect(counters.get('broker.rejected.identifier')).toBe(1);
    const anonymous = await client({ clientId: '', clean: true });
    expect(anonymous.connected).toBe(true);
    await expectStillServing();
  });

  it('refuses an empty MQTT 3.1 client id with CONNACK 0x02 (one longer than the 23 characters of 3.1 is accepted, as mosquitto does), and an unknown protocol level with 0x01', async () => {
    await startBroker();
    const raw = await rawSocket();
    raw.socket.write(Buffer.concat([Buffer.from([0x10, 14, 0, 6]), Buffer.from('MQIsdp'), Buffer.from([3, 0x02, 0, 0, 0, 0])]));
    expect(await raw.closed).toEqual(connack(2));
    const long = await rawSocket();
    long.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: 'x'.repeat(24), keepalive: 0 }));
    await long.received(4);
    long.socket.destroy();
    expect(counters.get('broker.rejected.identifier')).toBe(1);
    const level6 = Buffer.from(CONNECT);
    level6[8] = 6;
    const raw2 = await rawSocket();
    raw2.socket.write(level6);
    expect(await raw2.closed).toEqual(connack(1));
    expect(counters.get('broker.rejected.protocol-version')).toBe(1);
    await expectStillServing();
  });

  const PUBLISH_QOS3 = Buffer.from(mqttPacket.generate({ cmd: 'publish', topic: 'apiary/x', payload: 'x', qos: 1, messageId: 1, retain: false, dup: false }));
  PUBLISH_QOS3[0] = 0x36;
  const SUBSCRIBE_FLAGS0 = Buffer.from(SUBSCRIBE);
  SUBSCRIBE_FLAGS0[0] = 0x80;
  /** afterConnect: sent once the broker accepted a CONNECT (its CONNACK 0 is then the only reply). */
  const cases: { name: string; packets: Buffer[]; reason: string; afterConnect?: boolean }[] = [
    { name: 'garbage bytes (reserved packet type 0)', packets: [Buffer.from([0x00, 0x00, 0x13, 0x37])], reason: 'malformed' },
    { name: 'garbage bytes (HTTP)', packets: [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], reason: 'not-connect-first' },
    { name: 'a Remaining Length over 4 bytes [§2.2.3]', packets: [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])], reason: 'malformed' },
    { name: 'a first packet that is not CONNECT [MQTT-3.1.0-1]', packets: [Buffer.from([0xc0, 0x00])], reason: 'not-connect-first' },
    { name: 'a second CONNECT [MQTT-3.1.0-2]', afterConnect: true, packets: [CONNECT], reason: 'second-connect' },
    { name: 'SUBSCRIBE with reserved flags 0000 [MQTT-3.8.1-1]', afterConnect: true, packets: [SUBSCRIBE_FLAGS0], reason: 'reserved-flags' },
    { name: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]', afterConnect: true, packets: [PUBLISH_QOS3], reason: 'bad-qos' },
    { name: 'PUBLISH to a topic with a wildcard [MQTT-3.3.2-2]', afterConnect: true, packets: [publishRaw(Buffer.from('apiary/+/x'))], reason: 'invalid-topic' },
    { name: 'PUBLISH to an invalid UTF-8 topic [MQTT-1.5.3-1]', afterConnect: true, packets: [publishRaw(Buffer.from([0x61, 0x2f, 0xc3, 0x28]))], reason: 'invalid-utf8' },
    { name: 'PUBLISH to a topic with U+0000 [MQTT-1.5.3-2]', afterConnect: true, packets: [publishRaw(Buffer.from('a\u0000b'))], reason: 'invalid-utf8' },
    { name: 'SUBSCRIBE to a bad filter [MQTT-4.7.1-2]', afterConnect: true, packets: [mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/#/b', qos: 0 }] })], reason: 'invalid-topic' },
    { name: 'a will topic with a wildcard', packets: [mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'w', keepalive: 0, will: { topic: 'a/#', payload: Buffer.from('x'), qos: 0, retain: false } })], reason: 'invalid-topic' },
    { name: 'a password without a user name [MQTT-3.1.2-22]', packets: [connectWithFlags(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'p', keepalive: 0, username: 'u', password: Buffer.from('p') }), 0, 0x80)], reason: 'malformed' },
    { name: 'a CONNECT reserved flag [MQTT-3.1.2-3]', packets: [connectWithFlags(CONNECT, 0x01, 0)], reason: 'malformed' },
    { name: 'a server-to-client packet (CONNACK) from a client', afterConnect: true, packets: [connack(0)], reason: 'malformed' },
  ];

  it.each(cases)('closes the connection on $name, counts it, keeps serving', async ({ packets, reason, afterConnect }) => {
    await startBroker();
    const raw = afterConnect ? await connectedRawSocket() : await rawSocket();
    for (const packet of packets) raw.socket.write(packet);
    expect(await raw.closed).toEqual(afterConnect ? connack(0) : Buffer.alloc(0));
    expect(counters.get(`broker.rejected.${reason}`)).toBe(1);
    await expectStillServing();
  });

  it('refuses an oversized packet from its header alone, before the body is sent', async () => {
    await startBroker({ maxPacketBytes: 300_000 });
    const raw = await connectedRawSocket();
    raw.socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x04])); // PUBLISH declaring 8 MiB, and nothing more
    expect(await raw.closed).toEqual(connack(0));
    expect(counters.get('broker.rejected.oversized')).toBe(1);
    // A 256 KiB payload is within the default limit.
    const sub = await client({ clientId: 'big-sub' });
    await sub.subscribeAsync('apiary/big');
    const got = nextMessage(sub, 'apiary/big');
    await (await client({ clientId: 'big-pub' })).publishAsync('apiary/big', Buffer.alloc(256 * 1024, 0x61), { qos: 1 });
    expect((await got).length).toBe(256 * 1024);
    await expectStillServing();
  });

  it('closes a connection that sends no CONNECT in time, or only part of one', async () => {
    await startBroker({ connectTimeoutMs: 300 });
    const silent = await rawSocket();
    const partial = await rawSocket();
    partial.socket.write(CONNECT.subarray(0, 6));
    expect(await silent.closed).toEqual(Buffer.alloc(0));
    expect(await partial.closed).toEqual(Buffer.alloc(0));
    expect(counters.get('broker.rejected.connect-timeout')).toBe(2);
    await expectStillServing();
  });
});

describe('EmbeddedBroker over TLS', () => {
  let openssl = true;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    openssl = false;
  }

  it.skipIf(!openssl)('serves MQTT.js over TLS with a pinned self-signed CA (skipped without openssl on PATH)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'apiary-tls-'));
    try {
      const key = path.join(dir, 'key.pem');
      const cert = path.join(dir, 'cert.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
      const pem = readFileSync(cert);
      await startBroker({ tls: { key: readFileSync(key), cert: pem } });
      expect(broker.url).toBe(`mqtts://127.0.0.1:${broker.port}`);
      await expect(client({ clientId: 'unpinned', connectTimeout: 5000 })).rejects.toThrow(); // not trusted without the CA
      const sub = await client({ clientId: 'tls-sub', ca: pem });
      await sub.subscribeAsync('apiary/tls');
      const got = nextMessage(sub, 'apiary/tls');
      await (await client({ clientId: 'tls-pub', ca: pem })).publishAsync('apiary/tls', 'secret', { qos: 1 });
      expect(await got).toBe('secret');
      const plain = await rawSocket(); // plain MQTT on the TLS port is a failed handshake
      plain.socket.write(CONNECT);
      await plain.closed;
      expect(counters.get('broker.rejected.tls-handshake')).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
