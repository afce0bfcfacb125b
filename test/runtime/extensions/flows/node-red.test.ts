/**
 * The supervised Node-RED, for real: node-red 4.1 in a child process of an
 * in-process node (aedes on a loopback port, the simulated hive), a temp user
 * dir, its admin API on a loopback port. A flow deployed through the admin
 * API reacts to a swarm injected on the simulated hive; a flow that throws
 * asynchronously crashes Node-RED and never the node.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { flowsTopics } from '../../../../runtime/extensions/flows/default-flow.js';
import { spawnNodeProcess, type SpawnedNode } from '../../../support/node-process.js';
import { waitFor } from '../../../support/mesh-node.js';
import { admin, alive, deploy, flowsNode, flowsStatus, freePort, login, passwd, waitForFlows } from './node-red-helpers.js';

let dir: string;
let node: ApiaryNode | undefined;
let client: MqttClient | undefined;
let spawned: SpawnedNode | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-red-'));
});

afterEach(async () => {
  if (spawned && spawned.child.exitCode === null) {
    spawned.child.kill('SIGKILL');
    await spawned.exited;
  }
  spawned = undefined;
  await client?.endAsync();
  client = undefined;
  await node?.stop();
  node = undefined;
  await rm(dir, { recursive: true, force: true });
});

/**
 * A flow on the default flow's broker connection: the swarming decision -> a
 * function -> an MQTT topic of the test's; and a "ready" heartbeat, which
 * shows that connection is up (its subscriptions were sent before it).
 */
function swarmFlow(nodeId: string, out: string): Record<string, unknown>[] {
  const broker = 'a91a7e0000000002'; // the default flow's mqtt-broker node
  return [
    { id: 't1', type: 'tab', label: 'test' },
    { id: 'in1', type: 'mqtt in', z: 't1', topic: `apiary/${nodeId}/decisions/swarming`, qos: '1', datatype: 'json', broker, inputs: 0, wires: [['f1']] },
    { id: 'f1', type: 'function', z: 't1', func: "if (msg.payload.state !== 'raised') return null;\nmsg.payload = { seen: msg.payload.rule, value: msg.payload.value };\nreturn msg;", outputs: 1, wires: [['out1']] },
    { id: 'out1', type: 'mqtt out', z: 't1', topic: out, qos: '1', retain: 'false', broker, wires: [] },
    { id: 'i2', type: 'inject', z: 't1', props: [{ p: 'payload' }], payload: '{"ready":true}', payloadType: 'json', repeat: '0.2', once: true, onceDelay: 0.1, wires: [['out2']] },
    { id: 'out2', type: 'mqtt out', z: 't1', topic: `${out}/ready`, qos: '1', retain: 'false', broker, wires: [] },
  ];
}

describe('the supervised Node-RED', () => {
  it('runs in its own process with the generated settings and the default flow; `apiary flows passwd` guards the admin API; a deployed flow reacts to a swarm on the simulated hive', async () => {
    const dataDir = path.join(dir, 'data');
    const set = await passwd(dataDir, 'correct horse battery');
    expect(set.code, set.out).toBe(0);
    const stored = JSON.parse(await readFile(path.join(dataDir, 'node-red-admin.json'), 'utf8')) as { username: string; password: string };
    expect(stored.username).toBe('keeper');
    const bcrypt = createRequire(createRequire(import.meta.url).resolve('node-red/package.json'))('bcryptjs') as { compareSync(a: string, b: string): boolean };
    expect(bcrypt.compareSync('correct horse battery', stored.password)).toBe(true);
    expect((await stat(path.join(dataDir, 'node-red-admin.json'))).mode & 0o777).toBe(0o600);

    const port = await freePort();
    node = flowsNode(dataDir, { port });
    await node.start();
    const running = await waitForFlows(node, (s) => s.state === 'running', 'Node-RED running');
    expect(running).toMatchObject({ url: `http://127.0.0.1:${port}/`, restarts: 0, crashes: 0 });
    expect(running.pid).not.toBe(process.pid);
    expect(alive(running.pid ?? 0)).toBe(true);

    // The settings it was started with: 0600 (the credential secret), offline, loopback, the stored hash.
    const settingsFile = path.join(dataDir, 'node-red', 'settings.cjs');
    expect((await stat(settingsFile)).mode & 0o777).toBe(0o600);
    const settings = createRequire(import.meta.url)(settingsFile) as Record<string, unknown>;
    expect(settings).toMatchObject({
      uiHost: '127.0.0.1', uiPort: port, flowFile: 'flows.json',
      telemetry: { enabled: false }, editorTheme: { tours: false, palette: { catalogues: [] } }, externalModules: { palette: { allowInstall: false } },
      adminAuth: { type: 'credentials', users: [{ username: 'keeper', password: stored.password, permissions: '*' }] },
    });
    expect(settings.credentialSecret).toBe((await readFile(path.join(dataDir, 'node-red-secret'), 'utf8')).trim());

    // The admin API answers, behind the password.
    const url = running.url;
    expect((await admin(url, 'flows')).status).toBe(401);
    expect((await login(url, 'keeper', 'wrong password')).status).toBe(403);
    const tokenRes = await login(url, 'keeper', 'correct horse battery');
    expect(tokenRes.status).toBe(200);
    const { access_token: token } = await tokenRes.json() as { access_token: string };
    const current = await admin(url, 'flows', { token });
    expect(current.status).toBe(200);
    const defaultFlow = await current.json() as { type: string; topic?: string }[];
    expect(defaultFlow.filter((n) => n.type === 'mqtt in').map((n) => n.topic)).toEqual(['${APIARY_DECISIONS_TOPIC}', '${APIARY_WEIGHT_TOPIC}']);

    // Keep the default flow, add the test's, and watch both outputs on the node's broker.
    const nodeId = node.nodeId;
    const brokerPort = node.brokerPort ?? 0;
    const out = `test-out/${nodeId}/swarm`;
    const notify = flowsTopics('apiary', nodeId).notify;
    client = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`);
    const seen: { topic: string; payload: Record<string, unknown> }[] = [];
    client.on('message', (topic, payload) => seen.push({ topic, payload: JSON.parse(payload.toString()) as Record<string, unknown> }));
    await client.subscribeAsync([out, `${out}/ready`, notify], { qos: 1 });
    await deploy(url, [...defaultFlow, ...swarmFlow(nodeId, out)], token);
    await waitFor(() => seen.some((m) => m.topic === `${out}/ready`), 30_000, () => 'the deployed flow never connected to the node\'s broker');

    await node.commands.run('sim/swarm', {});
    await waitFor(() => seen.some((m) => m.topic === out) && seen.some((m) => m.topic === notify), 60_000, () => `flow outputs so far: ${JSON.stringify(seen)}`);
    const fromTestFlow = seen.find((m) => m.topic === out)?.payload;
    expect(fromTestFlow?.seen).toBe('swarming');
    expect(fromTestFlow?.value).toBeGreaterThan(0.8);
    expect(seen.filter((m) => m.topic === notify).map((m) => m.payload)).toContainEqual(expect.objectContaining({ node: nodeId, rule: 'swarming', severity: 'critical' }));

    // The default flow's daily weight summary, its inject fired through the admin API (as the editor's button does).
    const summaryTopic = flowsTopics('apiary', nodeId).weightSummary;
    await client.subscribeAsync(summaryTopic, { qos: 1 });
    await waitFor(async () => {
      const fired = await admin(url, 'inject/a91a7e0000000022', { method: 'POST', token });
      if (fired.status !== 200) throw new Error(`POST /inject answered ${fired.status}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return seen.some((m) => m.topic === summaryTopic);
    }, 30_000, () => 'no weight summary');
    const summary = seen.find((m) => m.topic === summaryTopic)?.payload as { node: string; readings: number; min: number; max: number; first: number; last: number };
    expect(summary.node).toBe(nodeId);
    expect(summary.readings).toBeGreaterThan(0);
    expect(summary.min).toBeLessThanOrEqual(summary.max);
    expect([summary.first, summary.last].every((w) => w >= summary.min && w <= summary.max)).toBe(true);

    // flows/stop and flows/start, through the command registry (MQTT and the CLI are views of it).
    const pid = running.pid ?? 0;
    expect(await node.commands.run('flows/stop', {})).toMatchObject({ ok: true, result: { state: 'stopped', pid: null } });
    expect(alive(pid)).toBe(false);
    expect(await node.commands.run('flows/start', {})).toMatchObject({ ok: true, result: { state: 'starting' } });
    const again = await waitForFlows(node, (s) => s.state === 'running', 'Node-RED running again');
    expect(again.pid).not.toBe(pid);
    expect(again.crashes).toBe(0); // a stop asked for is not a crash
    const status = await node.commands.run('flows/status', {});
    expect(status).toMatchObject({ ok: true, result: { state: 'running', pid: again.pid } });
  }, 150_000);

  it('a flow that throws asynchronously crashes Node-RED, not the node: the node keeps reading and answering commands, restarts Node-RED with backoff, counts it, and stops at a restart loop', async () => {
    const port = await freePort();
    node = flowsNode(path.join(dir, 'data'), { port, restart: { delay: '100ms', loopCrashes: 3, window: '10m' } });
    await node.start();
    const first = await waitForFlows(node, (s) => s.state === 'running', 'Node-RED running');
    // A function node whose async work fails with nobody to catch it. (A plain throw in the sandbox's setTimeout is
    // caught by Node-RED 4.1's function node and logged; a rejection from that timer escapes: Node-RED exits.)
    await deploy(first.url, [
      { id: 't1', type: 'tab', label: 'bad' },
      { id: 'i1', type: 'inject', z: 't1', props: [{ p: 'payload' }], payload: '', payloadType: 'date', repeat: '', once: true, onceDelay: 0.1, wires: [['f1']] },
      { id: 'f1', type: 'function', z: 't1', func: "setTimeout(() => { Promise.reject(new Error('a badly written flow')); }, 10);\nreturn null;", outputs: 1, wires: [[]] },
    ]);
    const crashed = await waitForFlows(node, (s) => s.crashes >= 1, 'a crash');
    expect(alive(first.pid ?? 0)).toBe(false);
    expect(crashed.lastExit?.code).not.toBe(0);

    // The node itself reads on: readings newer than the crash, and it still answers commands.
    const newest = () => Object.values(node?.latest.readings ?? {}).reduce((t, r) => Math.max(t, r.t), 0);
    const tAtCrash = newest();
    await waitFor(() => newest() > tAtCrash, 20_000, () => 'no reading after Node-RED crashed');
    expect((await node.commands.run('status', {})).ok).toBe(true);

    // The saved flow crashes every new Node-RED: restarted, counted, until the third crash makes it a loop.
    const loop = await waitForFlows(node, (s) => s.state === 'crashed', 'the restart loop');
    expect(loop).toMatchObject({ state: 'crashed', pid: null, crashes: 3, restarts: 2 });
    expect(loop.lastError).toMatch(/restart loop/);
    expect(node.counters.get('flows.crashes')).toBe(3);
    expect(node.counters.get('flows.restarts')).toBe(2);
    expect(node.counters.get('flows.restart_loops')).toBe(1);
    // Past the loop, nothing restarts it (no timer left): still crashed after more readings.
    const tAtLoop = newest();
    await waitFor(() => newest() > tAtLoop, 20_000);
    expect(await flowsStatus(node)).toMatchObject({ state: 'crashed', crashes: 3, restarts: 2 });

    // Fixed (the bad flow removed), `flows/start` brings it back.
    await writeFile(path.join(dir, 'data', 'node-red', 'flows.json'), '[]\n');
    expect(await node.commands.run('flows/start', {})).toMatchObject({ ok: true, result: { state: 'starting' } });
    const back = await waitForFlows(node, (s) => s.state === 'running', 'Node-RED running after the fix');
    expect(back.crashes).toBe(3);
  }, 150_000);

  it('a stop during start ends the starting Node-RED, counts no crash, and restarts nothing', async () => {
    const port = await freePort();
    node = flowsNode(path.join(dir, 'data'), { port, restart: { delay: '50ms' } });
    await node.start();
    const starting = await waitForFlows(node, (s) => s.pid !== null, 'a Node-RED child', 20_000);
    expect(starting.state).toBe('starting');
    const stopping = node;
    node = undefined;
    await stopping.stop();
    expect(alive(starting.pid ?? 0)).toBe(false);
    expect(stopping.counters.get('flows.crashes')).toBe(0);
    expect(stopping.counters.get('flows.restarts')).toBe(0);
    // Nothing listens on its port: no Node-RED was started behind the stop.
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  }, 60_000);

  it('a node killed with SIGKILL leaves no Node-RED behind (it exits once its parent is gone)', async () => {
    const port = await freePort();
    const config = path.join(dir, 'apiary.yaml');
    // No flow: a Node-RED that writes nothing after its parent died gets no EPIPE to end it; only the guard does.
    await writeFile(config, `version: 1\nflows:\n  enabled: true\n  port: ${port}\n  defaultFlow: false\n`);
    spawned = spawnNodeProcess(['--config', config, '--port', '0', '--data-dir', path.join(dir, 'data'), '--speed', '600']);
    const started = await spawned.waitFor(/"pid":(\d+),"heapMb":\d+,"msg":"Node-RED starting"/, 30_000);
    await spawned.waitFor(/Node-RED is running/, 60_000);
    const pid = Number(started[1]);
    expect(alive(pid)).toBe(true);
    spawned.child.kill('SIGKILL');
    await spawned.exited;
    await waitFor(() => !alive(pid), 20_000, () => `Node-RED (pid ${pid}) outlived the node`);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  }, 90_000);
});
