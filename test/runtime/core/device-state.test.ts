/**
 * The kernel bridges the device's state to the typed node event `device-state`
 * (what an extension uses for an availability topic) and to `apiary status`,
 * and a push button's events to the typed node event `button`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceState } from '../../../devices/device.js';
import { extensionsFor } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import type { ExtensionEntry } from '../../../runtime/core/extension.js';
import type { NodeContext } from '../../../runtime/core/node-context.js';

describe('the device\'s state in the node', () => {
  let dir: string;
  let node: ApiaryNode;
  const seen: DeviceState[] = [];
  const buttons: string[] = [];
  let context: NodeContext | undefined;

  /** An extension that records every device-state event and keeps its context. */
  const probe: ExtensionEntry = {
    name: 'device-state-probe',
    enabled: () => true,
    load: () => Promise.resolve(() => ({
      name: 'device-state-probe',
      start: (ctx: NodeContext) => {
        context = ctx;
        ctx.events.on('device-state', (state) => { seen.push(state); });
        ctx.events.on('button', (event) => { buttons.push(`${event.name} ${event.action}`); });
        return Promise.resolve();
      },
      stop: () => Promise.resolve(),
    })),
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-device-state-'));
    const config = parseConfig({ app: 'sensor-node', node: { dataDir: dir }, broker: { port: 0 }, device: { simulation: { speed: 600 } } });
    node = new ApiaryNode(config, pino({ level: 'silent' }), [...extensionsFor(config), probe]);
    await node.start();
  });
  afterAll(async () => {
    await node.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('says "connected" once the device is open, in the node event and in status', async () => {
    expect(seen).toEqual(['connected']);
    expect((await node.status()).deviceState).toBe('connected');
  });

  it('passes each change of the device on as a device-state event', async () => {
    const device = context?.device;
    if (!device) throw new Error('the probe extension did not start');
    device.emit('state', 'disconnected');
    device.emit('state', 'connected');
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(['connected', 'disconnected', 'connected']);
  });

  it('publishes it retained on the device topic, so a late subscriber (Home Assistant\'s availability) sees a lost board', async () => {
    const device = context?.device;
    if (!device) throw new Error('the probe extension did not start');
    const topic = `apiary/${node.nodeId}/device`;
    const lastRetained = async (): Promise<string | undefined> => {
      const client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`);
      const got = new Promise<string>((resolve) => client.on('message', (t, payload, packet) => { if (t === topic && packet.retain) resolve(payload.toString()); }));
      await client.subscribeAsync(topic, { qos: 1 });
      const value = await Promise.race([got, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2_000))]);
      await client.endAsync();
      return value;
    };
    expect(await lastRetained()).toBe('connected');
    device.emit('state', 'disconnected');
    await expect.poll(lastRetained, { timeout: 10_000 }).toBe('disconnected');
    device.emit('state', 'connected');
    await expect.poll(lastRetained, { timeout: 10_000 }).toBe('connected');
  });

  it('passes a push button\'s presses and releases on as button events, in order', async () => {
    const device = context?.device;
    if (!device) throw new Error('the probe extension did not start');
    device.emit('button', { name: 'talk', action: 'press', t: 1 });
    device.emit('button', { name: 'talk', action: 'release', t: 2 });
    await expect.poll(() => buttons).toEqual(['talk press', 'talk release']);
  });
});
