/**
 * A command asked over MQTT while the node is still starting, before the
 * extension that defines it has started, is answered APIARY_NODE_STARTING
 * (ask again), not "unknown command": a client that retries on the first
 * would give up wrongly on the second. A real node in-process, held at one
 * extension's start; a real MQTT.js client.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import type { ExtensionEntry } from '../../../runtime/core/extension.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { waitFor } from '../../support/mesh-node.js';

describe('commands asked while the node starts', () => {
  let dir: string | undefined;
  let node: ApiaryNode | undefined;
  let client: MqttClient | undefined;
  let open: () => void = () => undefined;
  afterAll(async () => {
    open(); // a failed check must not leave the start waiting
    await client?.endAsync();
    await node?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('are answered "starting" until the extension that defines them is up, then run; an unknown one is unknown once started', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-starting-'));
    const gate = new Promise<void>((resolve) => { open = resolve; });
    let reached = false;
    // The last extension to start: it waits at its start until the test opens the gate.
    const late: ExtensionEntry = {
      name: 'late', enabled: () => true,
      load: () => Promise.resolve(() => ({
        name: 'late',
        async start(context) {
          reached = true;
          await gate;
          context.commands.define('late/hello', { description: 'answers hello', args: z.strictObject({}), handler: () => 'hello' });
        },
        stop: () => Promise.resolve(),
      })),
    };
    const config = parseConfig({ node: { dataDir: dir }, broker: { port: 0 }, homeAssistant: { enabled: false } });
    node = new ApiaryNode(config, pino({ level: 'silent' }), [...extensionsFor(config), late]);
    const starting = node.start();
    await waitFor(() => reached, 20_000);
    const c = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort as number}`, { clientId: 'starting-test' });
    client = c;
    await c.subscribeAsync(`apiary/${node.nodeId}/reply/#`, { qos: 1 });
    let next = 0;
    const request = async (name: string): Promise<Record<string, unknown>> => {
      const requestId = `req-${++next}`;
      const replyTopic = `apiary/${(node as ApiaryNode).nodeId}/reply/${requestId}`;
      const answer = new Promise<Record<string, unknown>>((resolve) => {
        const onMessage = (topic: string, payload: Buffer) => {
          if (topic !== replyTopic) return;
          c.off('message', onMessage);
          resolve(JSON.parse(payload.toString()) as Record<string, unknown>);
        };
        c.on('message', onMessage);
      });
      await c.publishAsync(`apiary/${(node as ApiaryNode).nodeId}/cmd/${name}`, JSON.stringify({ requestId }), { qos: 1 });
      return answer;
    };

    expect(await request('late/hello')).toMatchObject({ ok: false, code: ErrorCodes.NODE_STARTING, error: expect.stringContaining('still starting') as string });
    // What the extensions started so far define runs already.
    expect(await request('status')).toMatchObject({ ok: true });
    open();
    await starting;
    expect(await request('late/hello')).toEqual({ ok: true, result: 'hello' });
    expect(await request('late/nothing')).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('unknown command') as string });
  });
});
