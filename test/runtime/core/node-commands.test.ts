/**
 * Every command the node offered before the command registry is still
 * reachable on its MQTT command topic, with the same reply shape
 * ({ok, result} or {ok: false, code, error}) and the same error codes.
 * A real node in-process, a real MQTT.js client.
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
import { ErrorCodes } from '../../../runtime/errors.js';

describe("the node's commands over MQTT", () => {
  let dir: string;
  let node: ApiaryNode;
  let client: MqttClient;
  let next = 0;

  /** Publishes on cmd/<name> and waits for the answer on the node's reply topic. */
  const request = async (name: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const requestId = `req-${++next}`;
    const replyTopic = `apiary/${node.nodeId}/reply/${requestId}`;
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${name}`)), 15_000);
      const onMessage = (topic: string, payload: Buffer) => {
        if (topic !== replyTopic) return;
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(JSON.parse(payload.toString()) as Record<string, unknown>);
      };
      client.on('message', onMessage);
    });
    await client.publishAsync(`apiary/${node.nodeId}/cmd/${name}`, JSON.stringify({ requestId, ...(args ? { args } : {}) }), { qos: 1 });
    return answer;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-commands-'));
    node = createNode(parseConfig({ node: { dataDir: dir }, broker: { port: 0 }, homeAssistant: { enabled: false } }), pino({ level: 'silent' }));
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'commands-test' });
    await client.subscribeAsync(`apiary/${node.nodeId}/reply/#`, { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('status', async () => {
    const reply = await request('status');
    expect(Object.keys(reply).sort()).toEqual(['ok', 'result']);
    expect(reply).toMatchObject({ ok: true, result: { nodeId: node.nodeId } });
  });

  it('sim/swarm (arguments it does not take are ignored, as before)', async () => {
    const reply = await request('sim/swarm', { whatever: 1 });
    expect(reply).toMatchObject({ ok: true, result: { preSwarmFrom: expect.any(Number) as number, swarmFrom: expect.any(Number) as number, swarmUntil: expect.any(Number) as number } });
  });

  it('shared/set and shared/get; a bad map names the field, the value and the fix', async () => {
    expect(await request('shared/set', { map: 'thresholds', key: 'swarming', value: 0.7 })).toEqual({ ok: true, result: { map: 'thresholds', key: 'swarming', value: 0.7 } });
    expect(await request('shared/get')).toMatchObject({ ok: true, result: { thresholds: { swarming: 0.7 } } });
    const refused = await request('shared/set', { map: 'members', key: 'x', value: 1 });
    expect(Object.keys(refused).sort()).toEqual(['code', 'error', 'ok']);
    expect(refused).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID });
    expect(refused.error).toContain('field "map": got "members"');
    expect(refused.error).toContain('not "members"');
    expect(refused.error).toContain('fix: shared/set takes map (string), key (string), value');
  });

  it('mesh/revoke answers a malformed revocation with its certificate error', async () => {
    expect(await request('mesh/revoke', { revocation: { v: 2 } })).toMatchObject({ ok: false, code: ErrorCodes.CERTIFICATE_INVALID, error: expect.stringContaining('malformed revocation') as string });
  });

  it('models/publish validates its dir', async () => {
    const reply = await request('models/publish', { dir: 'relative/path' });
    expect(reply).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('field "dir": got "relative/path"') as string });
    const missing = await request('models/publish', { dir: '/nonexistent/apiary-model' });
    expect(missing).toMatchObject({ ok: false, code: expect.stringMatching(/^APIARY_/) as string });
  });

  it('decisions/audit', async () => {
    const reply = await request('decisions/audit', { limit: 5 });
    expect(reply).toMatchObject({ ok: true });
    expect(Array.isArray(reply.result)).toBe(true);
    expect(await request('decisions/audit', { limit: 500 })).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('field "limit": got 500') as string });
  });

  it('an unknown command lists the known ones, and is counted as rejected', async () => {
    expect(await request('stats')).toEqual({
      ok: false, code: ErrorCodes.COMMAND_INVALID,
      error: 'unknown command "stats": known commands are status, shared/get, shared/set, mesh/revoke, flows/status, flows/start, flows/stop, voice/listen, voice/say, voice/status, pay/credit-check, pay/send, pay/balance, pay/statement, pay/settle, tasks/request, tasks/list, tasks/show, tasks/pending, tasks/approve, tasks/reject, sim/swarm, models/publish, decisions/audit, ask, intents, readings/recent, readings/range, mesh/decisions, update/status and update/publish',
    });
    const status = await request('status');
    expect((status.result as { counters: Record<string, number> }).counters['commands.rejected']).toBeGreaterThanOrEqual(1);
  });
});
