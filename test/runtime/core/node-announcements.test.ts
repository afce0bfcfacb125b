/**
 * Issue 10, "Also", on a whole node in-process (real broker, real MQTT.js
 * clients): a local client cannot erase the node's retained announcements
 * (state, info, Home Assistant configs); a client the owner lets in with
 * broker.acl can, and the node publishes them again; commands still work.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import { createNode } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';

describe('a node keeps its retained announcements', () => {
  let dir: string;
  let node: ApiaryNode;
  let url: string;
  let nodeId: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-announce-'));
    const config = parseConfig({
      node: { dataDir: dir, name: 'Guarded hive' },
      broker: { port: 0, acl: [{ action: 'allow', access: 'publish', topic: 'homeassistant/#', clients: ['ha-admin'] }] },
      mesh: { enabled: true },
    });
    node = createNode(config, pino({ level: 'silent' }));
    await node.start();
    url = `mqtt://127.0.0.1:${node.brokerPort}`;
    nodeId = String((await node.status()).nodeId);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await node.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function client(clientId: string): Promise<MqttClient> {
    const c = await connectAsync(url, { clientId, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  }

  /** The retained messages a new subscriber gets under `filter`, once `check` holds for them. */
  async function retained(filter: string, check: (got: Map<string, string>) => boolean): Promise<Map<string, string>> {
    const c = await client(`late-${clients.length}`);
    const got = new Map<string, string>();
    c.on('message', (topic, payload, packet) => { if (packet.retain) got.set(topic, payload.toString()); });
    await c.subscribeAsync(filter, { qos: 1 });
    await expect.poll(() => check(got), { timeout: 10_000 }).toBe(true);
    await c.endAsync(true);
    return got;
  }

  const counter = async (name: string): Promise<number> => ((await node.status()).counters as Record<string, number>)[name] ?? 0;

  it('refuses a local client clearing them, and restores what a client the owner allowed cleared; commands still work', async () => {
    const before = await retained('#', (m) => m.has(`apiary/${nodeId}/state`) && m.has(`apiary/${nodeId}/info`) && [...m.keys()].some((t) => t.startsWith('homeassistant/')));
    const haConfig = [...before.keys()].find((t) => t.startsWith(`homeassistant/sensor/apiary_${nodeId}/`)) as string;

    const vandal = await client('vandal');
    for (const topic of [`apiary/${nodeId}/state`, `apiary/${nodeId}/info`, haConfig]) await vandal.publishAsync(topic, '', { qos: 1, retain: true });
    expect(await counter('broker.rejected.publish-own-namespace')).toBe(3);

    const admin = await client('ha-admin');
    await admin.publishAsync(haConfig, '', { qos: 1, retain: true });
    await expect.poll(() => counter('broker.restored.announcements')).toBe(1);

    const guarded = [`apiary/${nodeId}/state`, `apiary/${nodeId}/info`, haConfig];
    // Retained messages arrive one by one: wait for the guarded ones, not only for as many as before.
    const after = await retained('#', (m) => m.size >= before.size && guarded.every((t) => m.has(t)));
    for (const topic of guarded) expect(after.get(topic)).toBe(before.get(topic));

    // The apiary CLI's request/reply over the node's command topics.
    const reply = new Promise<string>((resolve) => vandal.on('message', (topic, payload) => { if (topic === `apiary/${nodeId}/reply/guard-1`) resolve(payload.toString()); }));
    await vandal.subscribeAsync(`apiary/${nodeId}/reply/guard-1`, { qos: 1 });
    await vandal.publishAsync(`apiary/${nodeId}/cmd/status`, JSON.stringify({ requestId: 'guard-1' }), { qos: 1 });
    expect(JSON.parse(await reply)).toMatchObject({ ok: true, result: { nodeId } });
  });
});
