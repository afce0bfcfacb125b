/**
 * Home Assistant's binary sensors get a state from start on: a retained
 * ON/OFF per rule on alerts/<rule>, OFF before the rule ever fired, ON once
 * it did; the decision topic keeps its JSON decision record. A real node
 * (aedes on a loopback port, real MQTT.js clients, real files); the rule
 * fires on a reading the test sends through the node's own pipeline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { Extension, ExtensionEntry } from '../../../../runtime/core/extension.js';
import type { NodeContext } from '../../../../runtime/core/node-context.js';
import { waitFor } from '../../../support/mesh-node.js';

interface Retained { topic: string; payload: string; retain: boolean }

/** What a subscriber that connects now gets under `filter`, once every topic of `expected` has arrived. */
async function lateSubscriber(node: ApiaryNode, filter: string, expected: readonly string[]): Promise<Map<string, Retained>> {
  const client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: `late-${Math.random().toString(36).slice(2)}` });
  const got = new Map<string, Retained>();
  try {
    client.on('message', (topic, payload, packet) => { got.set(topic, { topic, payload: payload.toString('utf8'), retain: packet.retain }); });
    await client.subscribeAsync(filter, { qos: 1 });
    await waitFor(() => expected.every((t) => got.has(t)), 10_000, () => `got ${[...got.keys()].join(', ') || 'nothing'}; expected ${expected.join(', ')}`);
  } finally {
    await client.endAsync();
  }
  return got;
}

/** Fires only on a `probe` reading, which only the test sends (through the probe extension below). */
const PROBE_HIGH = { id: 'probe-high', input: 'reading.probe', above: 0, for: 0, message: 'the probe is up' };
const NEVER = { id: 'never', input: 'reading.temperature', above: 1000, severity: 'critical', message: 'hotter than anything' };

/** A test-only extension, first in line: a source of readings the test controls, sent through the node's real pipeline. */
function probeEntry(onContext: (ctx: NodeContext) => void): ExtensionEntry {
  return {
    name: 'probe',
    enabled: () => true,
    load: () => Promise.resolve((): Extension => ({
      name: 'probe',
      start: (ctx) => { onContext(ctx); return Promise.resolve(); },
      stop: () => Promise.resolve(),
    })),
  };
}

describe('Home Assistant alert states', () => {
  let dir: string;
  let node: ApiaryNode;
  let probe: NodeContext | undefined;
  const live: Retained[] = [];
  let watcher: MqttClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-ha-'));
    const config = parseConfig({ node: { dataDir: dir }, broker: { port: 0 }, device: { simulation: { speed: 600 } }, decisions: [PROBE_HIGH, NEVER] });
    expect(config.homeAssistant.enabled).toBe(true);
    node = new ApiaryNode(config, pino({ level: 'silent' }), [probeEntry((ctx) => { probe = ctx; }), ...extensionsFor(config)]);
    await node.start();
    watcher = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'ha-watcher' });
    watcher.on('message', (topic, payload, packet) => { live.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }); });
    await watcher.subscribeAsync(node.topics.alert(PROBE_HIGH.id), { qos: 1 });
  });

  afterAll(async () => {
    await watcher?.endAsync();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a late subscriber a retained OFF for every rule before any rule fired', async () => {
    const alerts = [PROBE_HIGH.id, NEVER.id].map((id) => node.topics.alert(id));
    const got = await lateSubscriber(node, `apiary/${node.nodeId}/alerts/#`, alerts);
    for (const topic of alerts) expect(got.get(topic)).toEqual({ topic, payload: 'OFF', retain: true });
    expect([...got.keys()].sort()).toEqual([...alerts].sort()); // one per rule, nothing else
    expect((await node.status()).activeDecisions).toEqual([]);
  });

  it('turns alerts/<rule> to a retained ON once the rule fires; the decision topic keeps its JSON decision record', async () => {
    await waitFor(() => live.length > 0, 10_000, () => 'the watcher got no retained alert state');
    expect(live[0]).toEqual({ topic: node.topics.alert(PROBE_HIGH.id), payload: 'OFF', retain: true });
    if (!probe) throw new Error('the probe extension did not start');
    await probe.events.emit('reading', { channel: 'probe', value: 5, unit: '', t: probe.clock.now() });
    await waitFor(() => live.some((m) => m.payload === 'ON'), 10_000, () => `alert messages: ${JSON.stringify(live)}`);
    expect(live.map((m) => m.payload)).toEqual(['OFF', 'ON']);

    const on = node.topics.alert(PROBE_HIGH.id);
    const off = node.topics.alert(NEVER.id);
    const decisionTopic = node.topics.decision(PROBE_HIGH.id);
    const got = await lateSubscriber(node, `apiary/${node.nodeId}/#`, [on, off, decisionTopic]);
    expect(got.get(on)).toEqual({ topic: on, payload: 'ON', retain: true });
    expect(got.get(off)).toEqual({ topic: off, payload: 'OFF', retain: true });
    expect(got.has(node.topics.decision(NEVER.id))).toBe(false); // no decision yet: no record

    const decision = got.get(decisionTopic);
    expect(decision?.retain).toBe(true);
    const record = JSON.parse(decision?.payload ?? '{}') as Record<string, unknown>;
    // The wire format, field for field: a reading rule's record has no evidence.
    expect(Object.keys(record).sort()).toEqual(['active', 'clearAt', 'input', 'message', 'reason', 'rule', 'severity', 'since', 'state', 't', 'threshold', 'time', 'value']);
    expect(record).toMatchObject({ rule: PROBE_HIGH.id, active: true, state: 'raised', input: 'reading.probe', value: 5, threshold: 0, severity: 'warning', message: PROBE_HIGH.message });
    expect(record.time).toBe(new Date(record.t as number).toISOString());
    expect(record.reason).toMatch(/^reading\.probe = 5 > 0/);
  });

  it('offers "ask the hive": a text entity whose command becomes an `ask` command, and an answer sensor on its reply topic', async () => {
    const base = `homeassistant/%s/apiary_${node.nodeId}/%s/config`;
    const textTopic = base.replace('%s', 'text').replace('%s', 'ask');
    const sensorTopic = base.replace('%s', 'sensor').replace('%s', 'answer');
    const got = await lateSubscriber(node, 'homeassistant/#', [textTopic, sensorTopic]);
    const text = JSON.parse(got.get(textTopic)?.payload ?? '{}') as { command_topic: string; command_template: string; max: number; unique_id: string };
    const sensor = JSON.parse(got.get(sensorTopic)?.payload ?? '{}') as { state_topic: string; value_template: string; json_attributes_topic: string };
    expect(text).toMatchObject({ name: 'Ask the hive', command_topic: node.topics.command('ask'), max: 200, unique_id: `apiary_${node.nodeId}_ask` });
    expect(sensor.json_attributes_topic).toBe(sensor.state_topic);
    // What Home Assistant does with a typed question: renders the template (`value | tojson` is JSON) and publishes it.
    const client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'ha-ask' });
    try {
      const answers: string[] = [];
      client.on('message', (topic, payload) => { if (topic === sensor.state_topic) answers.push(payload.toString('utf8')); });
      await client.subscribeAsync(sensor.state_topic, { qos: 1 });
      const question = 'What is the "temperature", please?';
      await client.publishAsync(text.command_topic, text.command_template.replace('{{ value | tojson }}', JSON.stringify(question)), { qos: 1 });
      await waitFor(() => answers.length > 0, 10_000, () => 'no answer on the sensor\'s state topic');
      const reply = JSON.parse(answers[0] ?? '{}') as { ok: boolean; result: { question: string; intent: string; answer: string } };
      // The fields the sensor's templates read.
      expect(reply).toMatchObject({ ok: true, result: { question, intent: 'reading' } });
      expect(reply.result.answer).toMatch(/^The temperature is -?\d+\.\d °C/);
      expect(sensor.value_template).toContain('value_json.result.answer');
    } finally {
      await client.endAsync();
    }
  });
});
