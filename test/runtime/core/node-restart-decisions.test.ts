/**
 * A node restarted after it saved rule state (cleanly, and by SIGKILL once a
 * decision was saved) must still decide. Found by an outside chaos run: the
 * restored, frozen rule state made every later rule check throw, so a swarm
 * after a restart raised nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

const CONFIG = `
device:
  simulation: { speed: 600, preSwarm: 30s, swarm: 3m }
  sensors:
    temperature: { interval: 1m }
    humidity: { interval: 1m }
    weight: { interval: 1m }
    sound: { interval: 10s }
log: { level: warn }
`;

interface DecisionMessage { rule: string; state: 'raised' | 'cleared' }

describe('decisions after a restart that restores saved rule state', () => {
  let dir: string;
  let running: NodeProcess | undefined;
  let args: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-restart-'));
    await writeFile(path.join(dir, 'apiary.yaml'), CONFIG);
    args = ['--config', path.join(dir, 'apiary.yaml'), '--data-dir', path.join(dir, 'data'), '--port', '0'];
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  /** Injects a swarm and waits until the swarming rule was raised and then cleared again (the swarm left). */
  async function swarmRaisesAndClears(node: NodeProcess): Promise<DecisionMessage[]> {
    const client: MqttClient = await connectAsync(`mqtt://127.0.0.1:${node.port}`);
    const seen: DecisionMessage[] = [];
    client.on('message', (topic, payload, packet) => {
      if (!packet.retain && topic.endsWith('/decisions/swarming')) seen.push(JSON.parse(payload.toString()) as DecisionMessage);
    });
    await client.subscribeAsync('apiary/+/decisions/+', { qos: 1 });
    const url = `mqtt://127.0.0.1:${node.port}`;
    const reply = await requestNode({ url, topicPrefix: 'apiary', command: 'sim/swarm' });
    expect(reply.ok).toBe(true);
    const deadline = Date.now() + 25_000;
    while (!seen.some((d) => d.state === 'cleared') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await client.endAsync(true);
    expect(node.output()).not.toMatch(/read only property/);
    return seen;
  }

  it('raises and clears a swarm after a clean restart and after kill -9', async () => {
    running = await startNodeProcess(args);
    expect((await swarmRaisesAndClears(running)).map((d) => d.state)).toEqual(['raised', 'cleared']);

    // A clean stop saves the rule state; the next start restores it.
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = await startNodeProcess(args);
    expect((await swarmRaisesAndClears(running)).map((d) => d.state)).toEqual(['raised', 'cleared']);

    // Each decision saves the rule state too: a kill -9 after one restores it as well.
    running.child.kill('SIGKILL');
    await running.exited;
    running = await startNodeProcess(args);
    expect((await swarmRaisesAndClears(running)).map((d) => d.state)).toEqual(['raised', 'cleared']);
    const status = await requestNode({ url: `mqtt://127.0.0.1:${running.port}`, topicPrefix: 'apiary', command: 'status' });
    expect(status.ok).toBe(true);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
  }, 120_000);
});
