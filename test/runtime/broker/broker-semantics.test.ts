/**
 * MQTT 3.1.1 session and retained-message semantics of the embedded broker,
 * each case run against the real broker on a loopback port AND against
 * Debian's mosquitto, the reference: both must answer the same. Raw packets
 * (test/support/raw-mqtt.ts) show what a client library hides: the DUP and
 * Session Present flags, which acknowledgement a client sends, packets a
 * 3.1 client sends. Each case names the aedes 1.2 bug it covers; see
 * runtime/broker/connection-semantics.ts, retained-delivery.ts, mqtt31.ts and
 * patches/aedes-1.2.0.patch for the fixes.
 */
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../../runtime/broker/embedded-broker.js';
import { Counters } from '../../../runtime/counters.js';
import { Mosquitto } from '../../support/mosquitto.js';
import { RawMqtt, type ConnectOptions, type PacketOf } from '../../support/raw-mqtt.js';

const logger = pino({ level: 'silent' });
const TARGETS = ['apiary', 'mosquitto'] as const;
type TargetName = (typeof TARGETS)[number];

interface Target {
  name: TargetName;
  port: number;
  /** The embedded broker's counters; undefined for mosquitto. */
  counters: Counters | undefined;
}

let mosquitto: Mosquitto;
const brokers: EmbeddedBroker[] = [];
const opened: RawMqtt[] = [];

beforeAll(async () => {
  mosquitto = await Mosquitto.start();
});
afterAll(async () => {
  await mosquitto.dispose();
});
afterEach(async () => {
  for (const client of opened.splice(0)) client.socket.destroy();
  for (const broker of brokers.splice(0)) await broker.stop();
});

async function start(name: TargetName): Promise<Target> {
  if (name === 'mosquitto') return { name, port: mosquitto.port, counters: undefined };
  const counters = new Counters();
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters });
  brokers.push(broker);
  return { name, port: await broker.start(), counters };
}

/** mosquitto lives for the whole file: every case uses client ids and topics of its own. */
let serial = 0;
const unique = (name: string): string => `${name}-${++serial}`;

async function connect(target: Target, options: ConnectOptions = {}): Promise<{ client: RawMqtt; connack: PacketOf<'connack'> }> {
  const result = await RawMqtt.connect(target.port, { clientId: unique('c'), ...options });
  opened.push(result.client);
  return result;
}

async function open(target: Target, protocolVersion: number): Promise<RawMqtt> {
  const client = await RawMqtt.open(target.port, protocolVersion);
  opened.push(client);
  return client;
}

async function subscribe(client: RawMqtt, topic: string, qos: 0 | 1 | 2): Promise<void> {
  const messageId = ++serial % 60_000 + 1;
  client.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
  await client.next('suback', (p) => p.messageId === messageId);
}

/** Publishes and completes the publisher's side of the handshake (PUBACK, or PUBREC/PUBREL/PUBCOMP). */
async function publish(client: RawMqtt, packet: Omit<IPublishPacket, 'cmd' | 'dup'> & { dup?: boolean }): Promise<void> {
  const messageId = packet.qos > 0 ? ++serial % 60_000 + 1 : undefined;
  client.send({ cmd: 'publish', dup: false, ...packet, messageId });
  if (packet.qos === 1) await client.next('puback', (p) => p.messageId === messageId);
  if (packet.qos === 2) {
    await client.next('pubrec', (p) => p.messageId === messageId);
    client.send({ cmd: 'pubrel', messageId });
    await client.next('pubcomp', (p) => p.messageId === messageId);
  }
}

/** A round trip after everything sent before it was handled: PINGREQ, PINGRESP. */
async function ping(client: RawMqtt): Promise<void> {
  const after = client.received.length;
  client.send({ cmd: 'pingreq' });
  await client.next('pingresp', () => true, after);
}

/** The broker still serves: a fresh subscriber gets a fresh publisher's QoS 1 message. */
async function expectServing(target: Target): Promise<void> {
  const topic = unique('check');
  const { client: sub } = await connect(target);
  await subscribe(sub, topic, 1);
  const { client: pub } = await connect(target);
  await publish(pub, { topic, payload: 'still here', qos: 1, retain: false });
  expect((await sub.next('publish', (p) => p.topic === topic)).payload.toString()).toBe('still here');
}

const payloads = (client: RawMqtt, topic: string): string[] => client.publishes(topic).map((p) => p.payload.toString());

describe.each(TARGETS)('MQTT 3.1.1 semantics on %s', (name) => {
  it('1. CONNACK Session Present is 1 when a persistent session without subscriptions resumes [MQTT-3.2.2-2]', async () => {
    const target = await start(name);
    const clientId = unique('session');
    const sessionPresent = async (clean: boolean): Promise<boolean> => {
      const { client, connack } = await connect(target, { clientId, clean });
      await client.disconnect();
      return connack.sessionPresent;
    };
    expect(await sessionPresent(false)).toBe(false); // new session
    expect(await sessionPresent(false)).toBe(true); // resumed, though it has no subscription
    expect(await sessionPresent(true)).toBe(false); // a clean session ends it [MQTT-3.2.2-1]
    expect(await sessionPresent(false)).toBe(false); // so there is none to resume
    await expectServing(target);
  });

  it('2. QoS 1/2 messages re-sent when a session resumes carry DUP 1, first deliveries DUP 0 [MQTT-3.3.1-1] [MQTT-3.3.1-3]', async () => {
    const target = await start(name);
    const clientId = unique('dup');
    const [t1, t2] = [unique('dup/q1'), unique('dup/q2')];
    const { client: first } = await connect(target, { clientId, clean: false });
    await subscribe(first, t1, 1);
    await subscribe(first, t2, 2);
    const { client: publisher } = await connect(target);
    await publish(publisher, { topic: t1, payload: 'one', qos: 1, retain: false });
    await publish(publisher, { topic: t2, payload: 'two', qos: 2, retain: false, dup: true }); // the publisher's DUP is not passed on
    const sent1 = await first.next('publish', (p) => p.topic === t1);
    const sent2 = await first.next('publish', (p) => p.topic === t2);
    expect([sent1.dup, sent2.dup]).toEqual([false, false]);
    await first.drop(); // never acknowledged
    await publish(publisher, { topic: t1, payload: 'queued', qos: 1, retain: false }); // queued for the offline session

    const { client: second, connack } = await connect(target, { clientId, clean: false });
    expect(connack.sessionPresent).toBe(true);
    const again1 = await second.next('publish', (p) => p.topic === t1 && p.payload.toString() === 'one');
    const again2 = await second.next('publish', (p) => p.topic === t2);
    const queued = await second.next('publish', (p) => p.topic === t1 && p.payload.toString() === 'queued');
    expect([again1.messageId, again1.dup]).toEqual([sent1.messageId, true]);
    expect([again2.messageId, again2.dup]).toEqual([sent2.messageId, true]);
    expect(queued.dup).toBe(false); // sent for the first time
    // The right acknowledgements finish every flow.
    second.send({ cmd: 'puback', messageId: again1.messageId }, { cmd: 'puback', messageId: queued.messageId }, { cmd: 'pubrec', messageId: again2.messageId });
    await second.next('pubrel', (p) => p.messageId === again2.messageId);
    second.send({ cmd: 'pubcomp', messageId: again2.messageId });
    await ping(second);
    expect(second.open).toBe(true);
    await expectServing(target);
  });

  it('3. a retained PUBLISH followed by a SUBSCRIBE to its topic reaches the client once, and again on the next SUBSCRIBE', async () => {
    const target = await start(name);
    const topic = unique('retained/once');
    const { client } = await connect(target);
    // In one write, so the broker reads both at once.
    client.send({ cmd: 'publish', topic, payload: 'v', qos: 0, retain: true, dup: false }, { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    await client.next('suback');
    await publish(client, { topic, payload: 'end', qos: 0, retain: false });
    await client.next('publish', (p) => p.payload.toString() === 'end');
    expect(payloads(client, topic)).toEqual(['v', 'end']);
    // A later SUBSCRIBE gets the retained message again [MQTT-3.8.4-3].
    const after = client.received.length;
    client.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic, qos: 0 }] });
    const resent = await client.next('publish', () => true, after);
    expect([resent.payload.toString(), resent.retain]).toEqual(['v', true]);
    if (target.counters) expect(target.counters.get('broker.deduplicated')).toBe(1);
    await expectServing(target);
  });

  it('3b. a retained message published once the SUBACK is in reaches the client once, live (RETAIN 0), while the retained ones stream', async () => {
    const target = await start(name);
    const prefix = unique('retained/many');
    const { client: publisher } = await connect(target);
    const topics = Array.from({ length: 1000 }, (_, i) => `${prefix}/${i}`);
    publisher.send(...topics.map((topic) => ({ cmd: 'publish' as const, topic, payload: 'old', qos: 0 as const, retain: true, dup: false })));
    await ping(publisher);
    const { client } = await connect(target);
    await subscribe(client, `${prefix}/#`, 1);
    const last = topics[topics.length - 1] as string;
    await publish(publisher, { topic: last, payload: 'new', qos: 1, retain: true }); // QoS 1: aedes looks up offline sessions between storing and routing
    await client.next('publish', (p) => p.topic === last && p.payload.toString() === 'new');
    await ping(client);
    const copies = client.publishes(last).filter((p) => p.payload.toString() === 'new');
    expect(copies.map((p) => p.retain)).toEqual([false]);
    await expectServing(target);
  });

  it('4. a message reaches a wildcard subscription at the lower QoS of the two, retained, live or queued [MQTT-3.8.4-6]', async () => {
    const target = await start(name);
    const prefix = unique('retained/qos');
    const { client: publisher } = await connect(target);
    await publish(publisher, { topic: `${prefix}/x`, payload: 'v', qos: 1, retain: true });
    const { client: low } = await connect(target);
    await subscribe(low, `${prefix}/#`, 0);
    const { client: high } = await connect(target);
    await subscribe(high, `${prefix}/+`, 1);
    const toLow = await low.next('publish');
    const toHigh = await high.next('publish');
    expect([toLow.qos, toLow.retain, toLow.payload.toString()]).toEqual([0, true, 'v']);
    expect([toHigh.qos, toHigh.retain]).toEqual([1, true]);
    // Live, and queued for a persistent session: QoS 2 to a QoS 1 subscription arrives at QoS 1, RETAIN 0 [MQTT-3.3.1-9].
    const clientId = unique('qos-away');
    const { client: away } = await connect(target, { clientId, clean: false });
    await subscribe(away, `${prefix}/+/q`, 1);
    await away.disconnect();
    await publish(publisher, { topic: `${prefix}/live/q`, payload: 'queued', qos: 2, retain: true });
    await publish(publisher, { topic: `${prefix}/y`, payload: 'live', qos: 2, retain: false });
    const live = await high.next('publish', (p) => p.payload.toString() === 'live');
    expect(live.qos).toBe(1);
    const { client: back } = await connect(target, { clientId, clean: false });
    const queued = await back.next('publish');
    expect([queued.payload.toString(), queued.qos, queued.retain]).toEqual(['queued', 1, false]);
    back.send({ cmd: 'puback', messageId: queued.messageId });
    await ping(back);
    expect(back.open).toBe(true);
    await expectServing(target);
  });

  it('5. retained lookup and offline queue match + against an empty level, as live routing does [MQTT-4.7.1-3]', async () => {
    const target = await start(name);
    const prefix = unique('empty');
    const { client: publisher } = await connect(target);
    await publish(publisher, { topic: `${prefix}//b`, payload: 'retained', qos: 0, retain: true });
    const { client: subscriber } = await connect(target);
    await subscribe(subscriber, `${prefix}/+/b`, 0);
    expect((await subscriber.next('publish')).topic).toBe(`${prefix}//b`);
    // A persistent session's QoS 1 subscription gets it while offline too.
    const clientId = unique('offline');
    const { client: away } = await connect(target, { clientId, clean: false });
    await subscribe(away, `${prefix}/+/c`, 1);
    await away.disconnect();
    await publish(publisher, { topic: `${prefix}//c`, payload: 'queued', qos: 1, retain: false });
    const { client: back } = await connect(target, { clientId, clean: false });
    expect((await back.next('publish')).payload.toString()).toBe('queued');
    await expectServing(target);
  });

  it('6. topics of 200 levels are routed and retained; past the bound the connection is closed, and counted', async () => {
    const target = await start(name);
    const levels = (n: number, root: string): string => [root, ...Array.from({ length: n - 1 }, (_, i) => `l${i}`)].join('/');
    const root = unique('deep');
    const topic = levels(200, root);
    const { client } = await connect(target);
    await subscribe(client, topic.replace('/l7/', '/+/'), 0);
    await publish(client, { topic, payload: 'deep', qos: 0, retain: true });
    expect((await client.next('publish')).topic).toBe(topic);
    const { client: late } = await connect(target);
    await subscribe(late, `${root}/#`, 0);
    expect((await late.next('publish')).retain).toBe(true);
    // A bound stays (a budget on matching cost): 300 levels are refused by both brokers.
    const { client: tooDeep } = await connect(target);
    tooDeep.send({ cmd: 'publish', topic: levels(300, root), payload: 'x', qos: 0, retain: false, dup: false });
    await tooDeep.closed;
    if (target.counters) expect(target.counters.get('broker.rejected.invalid-topic')).toBe(1);
    await expectServing(target);
  });

  it('7. an MQTT 3.1 client is held to the rules of 3.1, not the 3.1.1-only ones', async () => {
    const target = await start(name);
    const topic = unique('v31');
    const client = await open(target, 3);
    const connect31 = Buffer.from(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: unique('an-mqtt-3.1-client-id-longer-than-23'), keepalive: 0 }));
    connect31[11] = (connect31[11] as number) | 0x01 | 0x20; // reserved bit, will retain without a will: unused in 3.1
    const withFlags = (packet: Packet, flags: number): Buffer => {
      const bytes = Buffer.from(mqttPacket.generate(packet));
      bytes[0] = ((bytes[0] as number) & 0xf0) | flags;
      return bytes;
    };
    client.send(
      connect31,
      withFlags({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }, 0x0a), // DUP, as 3.1 re-sends it
      withFlags({ cmd: 'publish', topic, payload: 'from 3.1', qos: 0, retain: false, dup: false }, 0x08), // DUP on QoS 0
      withFlags({ cmd: 'pubrel', messageId: 9 }, 0x0a), // DUP
      withFlags({ cmd: 'pingreq' }, 0x01),
    );
    const connack = await client.next('connack');
    expect(connack.returnCode).toBe(0);
    await client.next('suback');
    await client.next('pubcomp', (p) => p.messageId === 9);
    await client.next('pingresp');
    expect((await client.next('publish')).payload.toString()).toBe('from 3.1');
    expect(client.open).toBe(true);
    // Rules 3.1 shares are still applied: an empty client id is refused [MQTT-3.1.3-8], QoS 3 closes.
    const empty = await open(target, 3);
    empty.send(Buffer.concat([Buffer.from([0x10, 14, 0, 6]), Buffer.from('MQIsdp'), Buffer.from([3, 0x02, 0, 0, 0, 0])]));
    const refused = await empty.next('connack');
    expect(refused.returnCode).toBe(2);
    const { client: qos3 } = await connect(target, { protocolVersion: 3 });
    qos3.send(withFlags({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }, 0x02).subarray(0, -1), Buffer.from([3]));
    await qos3.closed;
    await expectServing(target);
  });

  const wrongAcks = [
    { ack: 'pubrec', qos: 1 },
    { ack: 'pubcomp', qos: 1 },
    { ack: 'puback', qos: 2 },
    { ack: 'pubcomp', qos: 2 }, // before PUBREC
  ] as const;
  it.each(wrongAcks)('8. a $ack for a QoS $qos message closes the connection (§4.8); one for an unknown packet id does not', async ({ ack, qos }) => {
    const target = await start(name);
    const topic = unique('ack');
    const { client } = await connect(target);
    await subscribe(client, topic, qos);
    await publish(client, { topic, payload: 'v', qos, retain: false });
    const delivered = await client.next('publish');
    client.send({ cmd: ack, messageId: delivered.messageId });
    await client.closed;
    if (target.counters) expect(target.counters.get('broker.rejected.wrong-ack')).toBe(1);
    // An acknowledgement for nothing in flight is ignored (PUBREC still gets its PUBREL), as mosquitto does.
    const { client: other } = await connect(target);
    other.send({ cmd: 'puback', messageId: 4242 }, { cmd: 'pubcomp', messageId: 4243 }, { cmd: 'pubrec', messageId: 4244 });
    await other.next('pubrel', (p) => p.messageId === 4244);
    await ping(other);
    expect(other.open).toBe(true);
    await expectServing(target);
  });
});
