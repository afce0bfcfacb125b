/**
 * Issue 10, "Also": the node's own namespace and Home Assistant configs are
 * the node's; broker.acl lets an owner refuse a topic or let a tool in; the
 * node restores a retained announcement a client cleared. Against a real
 * broker with the node's policy for local clients, real MQTT.js clients, and
 * the node's in-process publishes and subscriptions.
 */
import fc from 'fast-check';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../../runtime/broker/embedded-broker.js';
import { covers, LocalTopicRules, type TopicAclRule } from '../../../runtime/broker/topic-acl.js';
import { configSchema } from '../../../runtime/config/schema.js';
import { Counters } from '../../../runtime/counters.js';
import { anonymousPolicy } from '../../../runtime/mesh/mesh-access.js';

const logger = pino({ level: 'silent' });
const NODE = 'nodenodenode';
const STATE = `apiary/${NODE}/state`;
const INFO = `apiary/${NODE}/info`;
const HA_CONFIG = `homeassistant/sensor/apiary_${NODE}/temperature/config`;
let counters: Counters;
let broker: EmbeddedBroker;
const clients: MqttClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await broker.stop();
});

/** A broker with the node's local-client rules, and the node's retained announcements published in-process. */
async function startNodeBroker(acl: TopicAclRule[] = []): Promise<void> {
  counters = new Counters();
  const rules = new LocalTopicRules({ prefix: 'apiary', nodeId: NODE, discoveryPrefix: 'homeassistant', acl, counters });
  broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, counters, access: anonymousPolicy('loopback', rules) });
  await broker.start();
  await broker.publish(STATE, 'online', { retain: true, qos: 1 });
  await broker.publish(INFO, '{"nodeId":"nodenodenode"}', { retain: true, qos: 1 });
  await broker.publish(HA_CONFIG, '{"name":"Temperature"}', { retain: true, qos: 1 });
}

async function client(clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId, ...options });
  clients.push(c);
  return c;
}

/** The retained messages a new subscriber to `filter` gets, once `expected` of them arrived. */
async function retainedFor(filter: string, expected: number): Promise<Record<string, string>> {
  const late = await client(`late-${Math.random().toString(36).slice(2)}`);
  const got: Record<string, string> = {};
  late.on('message', (topic, payload, packet) => { if (packet.retain) got[topic] = payload.toString(); });
  await late.subscribeAsync(filter, { qos: 1 });
  await expect.poll(() => Object.keys(got).length).toBe(expected);
  return got;
}

/** Waits until a message `client` sends after everything before it has come back to it: all it sent before was handled. */
async function roundTrip(c: MqttClient): Promise<void> {
  const topic = `test/echo/${Math.random().toString(36).slice(2)}`;
  await c.subscribeAsync(topic, { qos: 1 });
  const back = new Promise<void>((resolve) => c.on('message', (t) => { if (t === topic) resolve(); }));
  await c.publishAsync(topic, 'echo', { qos: 1 });
  await back;
}

describe('the node\'s own topics, for local clients', () => {
  it('refuses clearing or replacing the node\'s retained state, info and Home Assistant configs, and lets commands through', async () => {
    await startNodeBroker();
    const commands: string[] = [];
    await broker.subscribe(`apiary/${NODE}/cmd/#`, (packet, done) => {
      commands.push(`${packet.topic}=${packet.payload.toString()}`);
      done();
    });
    const vandal = await client('vandal');
    for (const topic of [STATE, INFO, HA_CONFIG]) await vandal.publishAsync(topic, '', { qos: 1, retain: true });
    await vandal.publishAsync(STATE, 'offline', { qos: 1, retain: true });
    await vandal.publishAsync(`apiary/${NODE}/reply/abc`, '{"ok":true}', { qos: 1 }); // a forged answer to someone's request
    expect(counters.get('broker.rejected.publish-own-namespace')).toBe(5);
    expect(vandal.connected).toBe(true);
    expect(await retainedFor('#', 3)).toEqual({ [STATE]: 'online', [INFO]: '{"nodeId":"nodenodenode"}', [HA_CONFIG]: '{"name":"Temperature"}' });

    // The apiary CLI's way in: a request on the node's command topics.
    await vandal.publishAsync(`apiary/${NODE}/cmd/status`, '{"requestId":"r1"}', { qos: 1 });
    await expect.poll(() => commands).toEqual([`apiary/${NODE}/cmd/status={"requestId":"r1"}`]);
    // Topics of no node are open as on any broker.
    await vandal.publishAsync('zigbee2mqtt/lamp', 'on', { qos: 1, retain: true });
    expect((await retainedFor('zigbee2mqtt/#', 1))['zigbee2mqtt/lamp']).toBe('on');
  });
});

describe('broker.acl', () => {
  const acl = configSchema.parse({
    broker: {
      acl: [
        { action: 'deny', topic: 'secret/#' },
        { action: 'deny', access: 'subscribe', topic: '{prefix}/+/readings/#', clients: ['ha'] },
        { action: 'allow', access: 'publish', topic: '{prefix}/{nodeId}/#', clients: ['tool'] },
        { action: 'allow', topic: '{prefix}/#', clients: ['tool'] },
      ],
    },
  }).broker.acl as TopicAclRule[];

  it('refuses a denied topic to publish and to subscribe, and withholds denied messages from wider subscriptions', async () => {
    await startNodeBroker(acl);
    const anyone = await client('anyone');
    await anyone.publishAsync('secret/plans', 'x', { qos: 1, retain: true });
    expect(counters.get('broker.rejected.publish-acl')).toBe(1);
    const refusal = (await anyone.subscribeAsync('secret/#').catch((err: unknown) => err)) as { packet?: { granted: number[] } };
    expect(refusal.packet?.granted).toEqual([0x80]);
    expect(counters.get('broker.rejected.subscribe-acl')).toBe(1);

    const ha = await client('ha');
    const seen: string[] = [];
    ha.on('message', (topic) => seen.push(topic));
    await ha.subscribeAsync(`apiary/${NODE}/#`, { qos: 1 });
    await broker.publish(`apiary/${NODE}/readings/temperature`, '{"value":34}', { qos: 1 });
    await broker.publish(`apiary/${NODE}/decisions/swarm`, 'raised', { qos: 1 });
    await expect.poll(() => seen.includes(`apiary/${NODE}/decisions/swarm`)).toBe(true);
    expect(seen).not.toContain(`apiary/${NODE}/readings/temperature`);
    expect(counters.get('broker.withheld.acl')).toBe(1);
  });

  it('lets a client the owner allows into the node\'s namespace, never onto mesh topics or other nodes\'; a cleared announcement is restored', async () => {
    await startNodeBroker(acl);
    const tool = await client('tool');
    await tool.publishAsync(`apiary/${NODE}/notes`, 'checked the hive', { qos: 1, retain: true });
    await tool.publishAsync(STATE, '', { qos: 1, retain: true }); // allowed to, yet the node's announcement comes back
    await tool.publishAsync(`apiary/othernodexxx/mesh/to/${NODE}`, 'forged', { qos: 1 });
    await tool.publishAsync('apiary/othernodexxx/state', 'offline', { qos: 1, retain: true });
    await roundTrip(tool);
    expect(counters.get('broker.rejected.publish-mesh')).toBe(1);
    expect(counters.get('broker.rejected.publish-foreign-namespace')).toBe(1);
    await expect.poll(() => counters.get('broker.restored.announcements')).toBe(1);
    const retained = await retainedFor('apiary/#', 3);
    expect(retained).toEqual({ [STATE]: 'online', [INFO]: '{"nodeId":"nodenodenode"}', [`apiary/${NODE}/notes`]: 'checked the hive' });
  });

  it('a topic rule: {prefix} and {nodeId} expand; a filter no rule can meet is refused by the schema', () => {
    expect(() => configSchema.parse({ broker: { acl: [{ action: 'deny', topic: 'a/#/b' }] } })).toThrow(/topic filter/);
    expect(covers(['a', '#'], ['a', '+', 'c'])).toBe(true);
    expect(covers(['a', '+'], ['a', '#'])).toBe(false);
    expect(covers(['+', 'b'], ['x', 'b'])).toBe(true);
  });

  it('never throws and never opens a mesh topic, whatever the topic, filter and rules (property)', () => {
    const level = fc.oneof(fc.constantFrom('apiary', NODE, 'mesh', 'to', '+', '#', '', 'cmd', 'homeassistant', `apiary_${NODE}`), fc.string({ maxLength: 6 }));
    const topic = fc.array(level, { minLength: 1, maxLength: 7 }).map((l) => l.join('/'));
    const rule = fc.record({ action: fc.constantFrom('allow' as const, 'deny' as const), access: fc.constantFrom('publish' as const, 'subscribe' as const, 'all' as const), topic });
    fc.assert(fc.property(fc.array(rule, { maxLength: 5 }), topic, fc.string({ maxLength: 8 }), (rules, t, clientId) => {
      const c = new Counters();
      const local = new LocalTopicRules({ prefix: 'apiary', nodeId: NODE, discoveryPrefix: 'homeassistant', acl: rules, counters: c });
      const publish = local.mayPublish(clientId, t);
      const read = local.mayRead(clientId, t);
      local.maySubscribe(clientId, t);
      const levels = t.split('/');
      if (levels[0] === 'apiary' && levels[2] === 'mesh') expect(publish || read).toBe(false);
      if (levels[0] === 'apiary' && levels.length > 1 && levels[1] !== NODE) expect(publish).toBe(false);
      // Every refusal is counted.
      const refusals = Object.values(c.snapshot()).reduce((a, b) => a + b, 0);
      expect(refusals).toBeGreaterThanOrEqual((publish ? 0 : 1) + (read ? 0 : 1));
    }), { numRuns: 300 });
  });
});
