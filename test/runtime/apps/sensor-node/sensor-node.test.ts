/**
 * The sensor-node application on a real node (aedes on a loopback port, a
 * real MQTT.js client, real files): readings and a derived dew point, its own
 * default rules and name, no model and no inference backend at all, and none
 * of the beehive's commands. Plus the dew point formula against published values.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode } from '../../../../runtime/apps/index.js';
import { SENSOR_NODE_NAME, SENSOR_NODE_RULES } from '../../../../runtime/apps/sensor-node/defaults.js';
import { dewPoint } from '../../../../runtime/apps/sensor-node/dew-point.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { waitFor } from '../../../support/mesh-node.js';

interface ReadingMessage { channel: string; value: number; t: number }

describe('dewPoint', () => {
  // Published dew points (psychrometric tables, the NOAA/NWS calculator), to their 0.1 °C.
  it.each([
    [20, 50, 9.3],
    [30, 80, 26.2],
    [25, 60, 16.7],
    [10, 90, 8.4],
    [0, 100, 0],
  ])('%s °C at %s %% is %s °C', (celsius, rh, expected) => {
    const td = dewPoint(celsius, rh);
    expect(td).toBeDefined();
    expect(Math.abs((td ?? Number.NaN) - expected)).toBeLessThanOrEqual(0.1);
  });

  it('is the air temperature at 100 % and below it otherwise', () => {
    expect(dewPoint(17.3, 100)).toBeCloseTo(17.3, 6);
    expect(dewPoint(17.3, 99)).toBeLessThan(17.3);
  });

  it.each([
    [20, 0], [20, -5], [20, 100.5], [20, Number.NaN], [-45.1, 50], [60.1, 50], [Number.NaN, 50],
  ])('is undefined outside the formula\'s range (%s °C, %s %%)', (celsius, rh) => {
    expect(dewPoint(celsius, rh)).toBeUndefined();
  });
});

describe('a sensor node', () => {
  let dir: string;
  let node: ApiaryNode;
  let client: MqttClient;
  const readings: ReadingMessage[] = [];
  let info: { name?: string; models?: unknown[]; rules?: { id: string }[] } | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sensor-node-'));
    node = createNode(parseConfig({ app: 'sensor-node', node: { dataDir: dir }, broker: { port: 0 }, device: { simulation: { speed: 600 } } }), pino({ level: 'silent' }));
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'sensor-node-test' });
    client.on('message', (topic, payload) => {
      if (topic === node.topics.info) info = JSON.parse(payload.toString('utf8')) as typeof info;
      else readings.push({ ...(JSON.parse(payload.toString('utf8')) as Omit<ReadingMessage, 'channel'>), channel: topic.split('/').at(-1) ?? '' });
    });
    await client.subscribeAsync([`apiary/${node.nodeId}/readings/#`, node.topics.info], { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts with no model loaded and never selects an inference backend', async () => {
    const status = await node.status();
    expect(status.app).toBe('sensor-node');
    expect((status.models as { loaded: unknown[] }).loaded).toEqual([]);
    expect(status.inference).toBeUndefined();
    expect(Object.keys(status.extensions as object)).toContain('dew-point');
    expect(Object.keys(status.extensions as object)).not.toContain('beehive');
  });

  it('publishes dew_point and dew_point_margin readings over MQTT, consistent with the temperature they come from', async () => {
    // A derived pair and the temperature reading it was computed from (same t).
    const matched = () => readings.find((r) => r.channel === 'dew_point'
      && readings.some((m) => m.channel === 'dew_point_margin' && m.t === r.t)
      && readings.some((m) => m.channel === 'temperature' && m.t === r.t));
    await waitFor(() => matched() !== undefined, 20_000, () => `readings so far: ${[...new Set(readings.map((r) => r.channel))].join(', ')}`);
    const td = matched() as ReadingMessage;
    const margin = readings.find((m) => m.channel === 'dew_point_margin' && m.t === td.t) as ReadingMessage;
    const temperature = readings.find((m) => m.channel === 'temperature' && m.t === td.t) as ReadingMessage;
    expect(td.value + margin.value).toBeCloseTo(temperature.value, 1);
    expect(td.value).toBeLessThanOrEqual(temperature.value);
    expect((await node.status()).latest).toMatchObject({ readings: { dew_point: { channel: 'dew_point' }, dew_point_margin: { channel: 'dew_point_margin' } } });
  });

  it('has no sim/swarm command (the beehive\'s)', async () => {
    const outcome = await node.commands.run('sim/swarm', {});
    expect(outcome).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID });
    expect(outcome.ok ? '' : outcome.error).toContain('unknown command "sim/swarm"');
    expect(node.commands.get('sim/swarm')).toBeUndefined();
  });

  it('announces its own name and default rules, and no model, in its retained info', async () => {
    await waitFor(() => info !== undefined, 10_000, () => 'no info message');
    expect(info?.name).toBe(SENSOR_NODE_NAME);
    expect(SENSOR_NODE_NAME).toBe('Apiary sensor node');
    expect(info?.models).toEqual([]);
    expect(info?.rules?.map((r) => r.id)).toEqual(SENSOR_NODE_RULES.map((r) => r.id));
    expect(info?.rules?.map((r) => r.id)).toEqual(['too-warm', 'condensation-risk']);
    expect((await node.status()).name).toBe('Apiary sensor node');
  });
});
