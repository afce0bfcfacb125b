/**
 * A whole node in-process: real aedes broker on a loopback port, real
 * MQTT.js client, real ONNX models through onnxruntime-node, real files.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import { createNode } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { DEFAULT_RULES } from '../../../runtime/apps/beehive/defaults.js';
import { decodeEntry, encodeEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { packagePath } from '../../../runtime/package-root.js';
import { AUDIO_FEATURE_NAMES as AUDIT_FEATURES } from '../../../models/features/audio-bands.js';
import { apiary } from '../../support/cli.js';
import { buildDenseClassifierOnnx } from '../../../models/onnx/onnx-writer.js';
import { sha256Hex } from '../../../models/registry/manifest.js';
import { mulberry32 } from '../../../models/training/softmax-regression.js';
import { waitFor as waitForCondition } from '../../support/mesh-node.js';

interface Message { topic: string; payload: Buffer; retain: boolean }

/** The longest array of numbers anywhere inside a JSON value. */
function longestNumberArray(value: unknown): number {
  if (Array.isArray(value)) {
    const own = value.every((v) => typeof v === 'number') ? value.length : 0;
    return Math.max(own, ...value.map(longestNumberArray));
  }
  if (value !== null && typeof value === 'object') return Math.max(0, ...Object.values(value).map(longestNumberArray));
  return 0;
}

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
    node = createNode(config, pino({ level: 'silent' }));
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

  it('writes the swarming decision with the inference behind it as a signed feed entry, and `apiary audit` re-runs the model and verifies it', async () => {
    const mesh = node.mesh;
    if (!mesh) throw new Error('the mesh is on by default');
    let entry: FeedEntry | undefined;
    await waitForCondition(async () => {
      for await (const e of mesh.store.read(node.nodeId, 1)) {
        if (e.type === 'decision' && (JSON.parse(e.body) as { rule: string }).rule === 'swarming') entry = e;
      }
      return entry !== undefined;
    }, 10_000, () => 'the swarming decision in the feed');
    if (!entry) throw new Error('unreachable');
    expect(decodeEntry(encodeEntry(entry)).origin).toBe(node.nodeId); // the signature verifies
    const body = JSON.parse(entry.body) as { value: number; evidence: { model: string; sha256: string; inputHash: string; features: Record<string, number>; probabilities: Record<string, number> } };
    const manifest = JSON.parse(await readFile(packagePath('models', 'hive-sound', 'manifest.json'), 'utf8')) as { sha256: string };
    expect(body.evidence).toMatchObject({ model: 'hive-sound', sha256: manifest.sha256 });
    expect(body.evidence.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(body.evidence.features).sort()).toEqual([...AUDIT_FEATURES].sort());
    expect(body.evidence.probabilities.swarm).toBe(body.value);

    const audit = await apiary(['audit', '--port', String(node.brokerPort), '--data-dir', dir, '--limit', '200', '--json'], dir);
    expect(audit.stderr).toBe('');
    expect(audit.code).toBe(0);
    const results = JSON.parse(audit.stdout) as { origin: string; seq: number; rule: string; verdict: string }[];
    expect(results.find((r) => r.seq === entry?.seq)).toMatchObject({ origin: node.nodeId, rule: 'swarming', verdict: 'verified' });
    expect(results.filter((r) => r.verdict !== 'verified' && r.verdict !== 'no-inference')).toEqual([]);
    const human = await apiary(['audit', '--port', String(node.brokerPort), '--data-dir', dir, '--origin', node.nodeId], dir);
    expect(human.stdout).toMatch(/swarming raised: verified: hive-sound 0\.1\.0 re-run on the recorded features/);
  });

  it('never lets raw audio out: MQTT messages and feed entries carry features and probabilities, not samples', async () => {
    const mesh = node.mesh;
    if (!mesh) throw new Error('the mesh is on by default');
    const payloads = messages.map((m) => ({ where: m.topic, text: m.payload.toString() }));
    for await (const e of mesh.store.read(node.nodeId, 1)) payloads.push({ where: `feed #${e.seq} (${e.type})`, text: e.body });
    expect(payloads.some((p) => p.where.endsWith('/models/hive-sound'))).toBe(true);
    // A 1 s frame is 2205 samples: any leak of it, as numbers or as encoded bytes, is far past these bounds.
    for (const { where, text } of payloads) {
      expect(text.length, where).toBeLessThan(8_192);
      expect(longestNumberArray(JSON.parse(['online', 'offline', 'ON', 'OFF', 'connected', 'disconnected'].includes(text) ? '""' : text)), where).toBeLessThanOrEqual(16);
      expect(text, where).not.toMatch(/"(samples|audio|pcm|frame)"/);
    }
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
      availability: [
        { topic: `apiary/${node.nodeId}/state`, payload_available: 'online', payload_not_available: 'offline' },
        { topic: `apiary/${node.nodeId}/device`, payload_available: 'connected', payload_not_available: 'disconnected' },
      ],
      availability_mode: 'all',
    });
    expect(configs[`${base}/hive-sound_swarm/config`]).toMatchObject({ unique_id: `apiary_${node.nodeId}_hive_sound_swarm` });
    expect(configs[`homeassistant/binary_sensor/apiary_${node.nodeId}/swarming/config`]).toMatchObject({ device_class: 'problem', state_topic: `apiary/${node.nodeId}/alerts/swarming`, json_attributes_topic: `apiary/${node.nodeId}/decisions/swarming` });
    // Short entity names (the rule's message stays in the attributes), and the origin of the config.
    expect(configs[`homeassistant/binary_sensor/apiary_${node.nodeId}/hive-overheating/config`]).toMatchObject({ name: 'Hive overheating', origin: { name: 'Apiary' } });
    expect(configs[`${base}/temperature/config`]?.origin).toMatchObject({ name: 'Apiary', sw_version: expect.any(String) as unknown });
    // 4 channels + 4 model outputs + 5 rules (the 4 defaults and the stale-label one) + "ask the hive" (text and answer sensor)
    expect(Object.keys(configs)).toHaveLength(15);
    expect(Object.keys(configs)).toEqual(expect.arrayContaining([`homeassistant/text/apiary_${node.nodeId}/ask/config`, `${base}/answer/config`]));
  });

  it('answers status over MQTT, and rejects and counts malformed commands without falling over', async () => {
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, 'not json{');
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, JSON.stringify({ requestId: '../../elsewhere' }));
    const reply = waitFor((m) => m.topic === `apiary/${node.nodeId}/reply/st-1`, 'the status reply');
    await client.publishAsync(`apiary/${node.nodeId}/cmd/status`, JSON.stringify({ requestId: 'st-1' }));
    const status = JSON.parse((await reply).payload.toString()) as { ok: boolean; result: { nodeId: string; deviceState: string; counters: Record<string, number>; storage: { bytes: number; streams: { name: string }[] }; latest: { readings: Record<string, unknown> } } };
    expect(status.ok).toBe(true);
    expect(status.result.nodeId).toBe(node.nodeId);
    expect(status.result.deviceState).toBe('connected');
    expect(status.result.counters['commands.rejected']).toBe(2);
    expect(status.result.counters['decisions.rule_input_unknown']).toBe(1);
    expect(status.result.storage.bytes).toBeGreaterThan(0);
    expect(status.result.storage.streams.map((s) => s.name)).toContain('readings');
    expect(Object.keys(status.result.latest.readings)).toContain('weight');
  });
  it('takes a signed model with `apiary models publish`, runs it at once, and still audits decisions of the version it replaced', async () => {
    const release = path.join(dir, 'release', 'hive-sound');
    await mkdir(release, { recursive: true });
    // A retrained model (other weights) under a new version, signed by the node's own owner below.
    const random = mulberry32(11);
    const bytes = buildDenseClassifierOnnx({ weights: Array.from({ length: 8 }, () => [random(), random(), random()]), bias: [0, 0, 0], modelName: 'hive-sound', modelVersion: '0.1.1' });
    await writeFile(path.join(release, 'model.onnx'), bytes);
    const manifest = JSON.parse(await readFile(packagePath('models', 'hive-sound', 'manifest.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(release, 'manifest.json'), JSON.stringify({ ...manifest, version: '0.1.1', sha256: sha256Hex(bytes) }, null, 2));
    const unsigned = await apiary(['models', 'publish', release, '--port', String(node.brokerPort), '--data-dir', dir], dir);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain('is not signed');
    expect((await apiary(['models', 'sign', release, '--key-file', path.join(dir, 'owner.json')], dir)).code).toBe(0);
    const published = await apiary(['models', 'publish', release, '--port', String(node.brokerPort), '--data-dir', dir], dir);
    expect(published.stderr).toBe('');
    expect(published.stdout).toMatch(/published hive-sound 0\.1\.1 as feed entry #\d+; here it is installed/);
    const status = await apiary(['status', '--json', '--port', String(node.brokerPort), '--data-dir', dir], dir);
    const models = (JSON.parse(status.stdout) as { models: { loaded: { name: string; version: string; signer: string }[]; dir: string } }).models;
    expect(models.loaded.find((m) => m.name === 'hive-sound')).toMatchObject({ version: '0.1.1' });
    expect(models.dir).toBe(path.join(dir, 'models'));
    const audit = await apiary(['audit', '--port', String(node.brokerPort), '--data-dir', dir, '--limit', '200', '--json'], dir);
    expect(audit.code, audit.stdout).toBe(0);
    expect((JSON.parse(audit.stdout) as { rule: string; verdict: string }[]).find((r) => r.rule === 'swarming')?.verdict).toBe('verified');
  });
});
