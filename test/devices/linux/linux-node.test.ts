/**
 * A real node (sensor-node app, aedes on a loopback port, a real MQTT.js
 * client, real files) on `device.kind: linux` over a fake sysfs tree: the
 * kernel's sensors are published over MQTT; an unplugged probe publishes
 * nothing, shows in `apiary status`'s deviceCounters, leaves the node
 * running, and is published again when it returns.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import { FakeBoard, waitFor } from '../../support/fake-board.js';

const PROBE = '28-0316a2795bff';

describe('a node on device.kind linux', () => {
  let dir: string;
  let board: FakeBoard;
  let node: ApiaryNode;
  let client: MqttClient;
  const readings: { channel: string; value: number; t: number }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-linux-node-'));
    board = await FakeBoard.create();
    await board.ds18b20(PROBE, 24.5);
    await board.hwmon(1, 'sht3x', { temp1_input: 21000, humidity1_input: 65000 });
    node = createNode(parseConfig({
      app: 'sensor-node',
      node: { dataDir: dir },
      broker: { port: 0 },
      device: {
        kind: 'linux',
        linux: {
          root: board.root,
          sensors: [
            { driver: 'hwmon', quantity: 'temperature', interval: '200ms' },
            { driver: 'hwmon', quantity: 'humidity', interval: '200ms' },
            { driver: 'ds18b20', id: PROBE, channel: 'brood_temp', interval: '200ms' },
          ],
        },
      },
    }), pino({ level: 'silent' }));
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'linux-node-test' });
    client.on('message', (topic, payload) => {
      readings.push({ ...(JSON.parse(payload.toString('utf8')) as { value: number; t: number }), channel: topic.split('/').at(-1) ?? '' });
    });
    await client.subscribeAsync(`apiary/${node.nodeId}/readings/#`, { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await node?.stop();
    await board?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes the kernel sensors, and the app derives from them (dew point)', async () => {
    await waitFor(() => ['temperature', 'humidity', 'brood_temp', 'dew_point'].every((c) => readings.some((r) => r.channel === c)), 'all channels over MQTT');
    expect(readings.find((r) => r.channel === 'brood_temp')?.value).toBe(24.5);
    expect(readings.find((r) => r.channel === 'humidity')?.value).toBe(65);
    const status = await node.status();
    expect(status.device).toBe('linux');
  });

  it('publishes nothing for an unplugged probe, counts it in status, keeps running, and resumes', async () => {
    await board.unplug(`sys/bus/w1/devices/${PROBE}`);
    const missing = async () => ((await node.status()).deviceCounters as Record<string, number>)['missing.brood_temp'] ?? 0;
    await waitFor(async () => (await missing()) >= 2, 'the missing probe in deviceCounters');
    const since = readings.length;
    await waitFor(() => readings.slice(since).filter((r) => r.channel === 'temperature').length >= 2, 'other channels still flowing');
    expect(readings.slice(since).some((r) => r.channel === 'brood_temp')).toBe(false);

    await board.ds18b20(PROBE, 25.125);
    await waitFor(() => readings.some((r) => r.channel === 'brood_temp' && r.value === 25.125), 'the probe back over MQTT');
    expect(((await node.status()).deviceCounters as Record<string, number>)['recovered.brood_temp']).toBe(1);
  });
});
