/**
 * A whole node in-process: real aedes broker on a loopback port, real
 * MQTT.js client, real ONNX models through onnxruntime-node, real files.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiaryNode } from '../../../runtime/agent/apiary-node.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { DEFAULT_RULES } from '../../../runtime/config/schema.js';

interface Message { topic: string; payload: Buffer; retain: boolean }

describe('an Apiary node, end to end', () => {
  let dir: string;
  let node: ApiaryNode;
  let client: MqttClient;
  const messages: Message[] = [];

  const waitFor = (predicate: (m: Message) => boolean, what: string, timeoutMs = 20_000) =>
    new Promise<Message>((resolve, reject) => {
      const found = messages.find(predicate);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
        const m = { topic, payload, retain: packet.retain };
        if (predicate(m)) { clearTimeout(timer); client.off('message', onMessage); resolve(m); }
      };
      client.on('message', onMessage);
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-'));
    const config = parseConfig({
      node: { dataDir: dir, name: 'Test hive' },
      broker: { port: 0 },
      device: {
        simulation: { speed: 600, preSwarm: '30s', swarm: '3m' },
        sensors: { temperature: { interval: '1m' }, humidity: { interval: '1m' }, weight: { interval: '1m' }, sound: { interval: '10s' } },
      },
      models: { thermal: { every: '5m', minReadings: 3 } },
      // A rule on a label the shipped model no longer has (it was renamed): counted and warned at start.
      decisions: [...DEFAULT_RULES, { id: 'stale-label', input: 'model.hive-thermal.brood_nest_held', below: 0.3, message: 'an old label' }],
    });
    node = new ApiaryNode(config, pino({ level: 'silent' }));
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'integration-test' });
    client.on('message', (topic, payload, packet) => messages.push({ topic, payload, retain: packet.retain }));
    await client.subscribeAsync(['apiary/#', 'homeassistant/#'], { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('announces itself online (retained) under its own node id', async () => {
    const state = await waitFor((m) => m.topic === `apiary/${node.nodeId}/state`, 'the state topic');
    expect(state.payload.toString()).toBe('online');
    expect(state.retain).toBe(true);
  });

  it('publishes readings of every channel with units', async () => {
    for (const [channel, unit] of [['temperature', '°C'], ['humidity', '%'], ['weight', 'kg'], ['sound_level', 'dBFS']]) {
      const m = await waitFor((x) => x.topic === `apiary/${node.nodeId}/readings/${channel}`, `a ${channel} reading`);
      const reading = JSON.parse(m.payload.toString()) as { value: number; unit: string; t: number };
      expect(reading.unit).toBe(unit);
      expect(Number.isFinite(reading.value)).toBe(true);
    }
  });

  it('publishes model outputs from the verified ONNX models', async () => {
    const sound = await waitFor((m) => m.topic === `apiary/${node.nodeId}/models/hive-sound`, 'a hive-sound output');
    const out = JSON.parse(sound.payload.toString()) as { label: string; probabilities: Record<string, number>; sha256: string; inputHash: string };
    expect(Object.keys(out.probabilities).sort()).toEqual(['normal', 'pre-swarm', 'swarm']);
    expect(out.label).toBe('normal');
    expect(out.sha256).toMatch(/^[0-9a-f]{64}$/);
    const thermal = await waitFor((m) => m.topic === `apiary/${node.nodeId}/models/hive-thermal`, 'a hive-thermal output');
    const strong = (JSON.parse(thermal.payload.toString()) as { probabilities: Record<string, number> }).probabilities.strong_colony;
    expect(strong).toBeGreaterThanOrEqual(0);
    expect(strong).toBeLessThanOrEqual(1);
  });

  it('decides "swarming" after a swarm is injected over MQTT, with the reason', async () => {
    const reply = waitFor((m) => m.topic === `apiary/${node.nodeId}/reply/swarm-1`, 'the command reply');
    await client.publishAsync(`apiary/${node.nodeId}/cmd/sim/swarm`, JSON.stringify({ requestId: 'swarm-1' }), { qos: 1 });
    expect(JSON.parse((await reply).payload.toString())).toMatchObject({ ok: true });
    const swarmOutput = await waitFor((m) => m.topic === `apiary/${node.nodeId}/models/hive-sound` && (JSON.parse(m.payload.toString()) as { label: string }).label === 'swarm', 'a swarm model output');
    expect(swarmOutput).toBeDefined();
    const decision = await waitFor((m) => m.topic === `apiary/${node.nodeId}/decisions/swarming` && (JSON.parse(m.payload.toString()) as { active: boolean }).active, 'the swarming decision');
    const d = JSON.parse(decision.payload.toString()) as { state: string; severity: string; reason: string; value: number; threshold: number };
    expect(d).toMatchObject({ state: 'raised', severity: 'critical', threshold: 0.8 });
    expect(d.value).toBeGreaterThan(0.8);
    expect(d.reason).toMatch(/^model\.hive-sound\.swarm = [\d.]+ > 0\.8, held for/);
    expect(decision.retain).toBe(false); // live delivery; a late subscriber gets it retained:
    const late = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`);
    const retained = await new Promise<Buffer>((resolve) => {
      late.on('message', (_t, payload) => resolve(payload));
      void late.subscribeAsync(`apiary/${node.nodeId}/decisions/swarming`);
    });
    await late.endAsync();
    expect((JSON.parse(retained.toString()) as { rule: string }).rule).toBe('swarming');
  });

  it('publishes retained Home Assistant discovery configs with stable unique ids', async () => {
    const late = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`);
    const configs: Record<string, Record<string, unknown>> = {};
    late.on('message', (topic, payload, packet) => { if (packet.retain) configs[topic] = JSON.parse(payload.toString()) as Record<string, unknown>; });
    await late.subscribeAsync('homeassistant/#');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await late.endAsync();
    const base = `homeassistant/sensor/apiary_${node.nodeId}`;
    expect(configs[`${base}/temperature/config`]).toMatchObject({
      unique_id: `apiary_${node.nodeId}_temperature`,
      state_topic: `apiary/${node.nodeId}/readings/temperature`,
      device_class: 'temperature',
      unit_of_measurement: '°C',
      availability_topic: `apiary/${node.nodeId}/state`,
    });
    expect(configs[`${base}/hive-sound_swarm/config`]).toMatchObject({ unique_id: `apiary_${node.nodeId}_hive_sound_swarm` });
    expect(configs[`homeassistant/binary_sensor/apiary_${node.nodeId}/swarming/config`]).toMatchObject({ device_class: 'problem', state_topic: `apiary/${node.nodeId}/decisions/swarming` });
    // 4 channels + 4 model outputs + 5 rules (the 4 defaults and the stale-label one)
    expect(Object.keys(configs)).toHaveLength(13);
  });

  it('answers status over MQTT, and rejects and counts malformed commands without falling over', async () => {
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, 'not json{');
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, JSON.stringify({ requestId: '../../elsewhere' }));
    const reply = waitFor((m) => m.topic === `apiary/${node.nodeId}/reply/st-1`, 'the status reply');
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, JSON.stringify({ requestId: 'st-1' }));
    const status = JSON.parse((await reply).payload.toString()) as { ok: boolean; result: { nodeId: string; counters: Record<string, number>; storage: { bytes: number; streams: { name: string }[] }; latest: { readings: Record<string, unknown> } } };
    expect(status.ok).toBe(true);
    expect(status.result.nodeId).toBe(node.nodeId);
    expect(status.result.counters['commands.rejected']).toBe(2);
    expect(status.result.counters['decisions.rule_input_unknown']).toBe(1);
    expect(status.result.storage.bytes).toBeGreaterThan(0);
    expect(status.result.storage.streams.map((s) => s.name)).toContain('readings');
    expect(Object.keys(status.result.latest.readings)).toContain('weight');
  });
});
