/**
 * The node with and without its supervised Node-RED (issue 13's benchmark):
 * the built node (dist/apiary.mjs start, simulated beehive at speed 60, a new
 * data dir) starts twice per round, in turns: once with `flows.enabled: false`
 * (the reference, the node alone) and once with Node-RED on a free loopback
 * port and its default flow. Measured: VmRSS and PSS of the node alone; of the node
 * and of its Node-RED child, settled (10 s after the editor answers); Node-RED's
 * start-up (the node's "Apiary node started" line, and Node-RED's spawn, to its
 * editor answering HTTP); and, after an echo flow (`mqtt in` on a reading topic
 * -> `mqtt out` to apiary-flows/<id>/echo) is deployed through the admin API
 * beside the default flow, the time from a reading's arrival on the node's
 * broker to its echo's, both seen by one MQTT.js client.
 * `npm run bench -- --only flows`.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { connect } from 'mqtt';
import { memory, type Memory } from './proc.js';
import { Child, freePort, NODE_MAIN, sleep, withTimeout } from './processes.js';
import { summarize } from './stats.js';

const TIMEOUT_MS = 120_000;
/** After the editor answers (or, for the node alone, after the same wait): Node-RED loads its flows and connects. */
const SETTLE_MS = 10_000;
const READING_CHANNEL = 'temperature';

export interface FlowsPlan {
  readonly rounds: number;
  /** Readings echoed per run with Node-RED. */
  readonly echoes: number;
}

export const FLOWS_FULL: FlowsPlan = { rounds: 5, echoes: 20 };
export const FLOWS_QUICK: FlowsPlan = { rounds: 2, echoes: 20 };

export interface FlowsRun {
  readonly flows: boolean;
  /** ms from spawn to the "Apiary node started" line. */
  readonly startedMs: number;
  readonly node: Memory;
  /** With flows on: the Node-RED child's memory, its start-up and the echo latencies. */
  readonly nodeRed?: Memory;
  /** ms from the "Apiary node started" line to the editor's first HTTP answer (negative: it answered before the line). */
  readonly editorAfterStartedMs?: number;
  /** ms from the node's "Node-RED starting" line (the spawn) to the editor's first HTTP answer. */
  readonly editorAfterSpawnMs?: number;
  readonly echoMs?: number[];
  readonly exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly forced: boolean };
}

export interface FlowsResults {
  readonly alone: FlowsRun[];
  readonly withNodeRed: FlowsRun[];
}

function config(dataDir: string, nodeRedPort: number | undefined): string {
  return [
    `node: { name: flows bench, dataDir: ${JSON.stringify(dataDir)} }`,
    'homeAssistant: { enabled: false }',
    'device: { kind: simulated-beehive, simulation: { speed: 60 } }',
    nodeRedPort === undefined ? 'flows: { enabled: false }' : `flows: { enabled: true, port: ${nodeRedPort} }`,
    '',
  ].join('\n');
}

/** Polls the editor every 50 ms until it answers 200. */
async function editorAnswers(url: string, child: Child): Promise<void> {
  const deadline = performance.now() + TIMEOUT_MS;
  while (performance.now() < deadline && child.running) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`the Node-RED editor at ${url} did not answer within ${TIMEOUT_MS} ms; node output:\n${child.output}`);
}

/** The Node-RED process: the pid the node logged, checked against the node's children in /proc. */
async function nodeRedPid(nodePid: number, logged: number): Promise<number> {
  const tasks = await readdir(`/proc/${nodePid}/task`);
  const children = (await Promise.all(tasks.map((t) => readFile(`/proc/${nodePid}/task/${t}/children`, 'utf8').catch(() => '')))).join(' ').split(/\s+/).filter(Boolean).map(Number);
  if (!children.includes(logged)) throw new Error(`Node-RED pid ${logged} (from the node's log) is not a child of the node (${children.join(', ') || 'none'})`);
  return logged;
}

/** The echo flow, added beside the default flow: its own tab and broker config node. */
function echoFlow(brokerPort: number, nodeId: string): Record<string, unknown>[] {
  const tab = 'bench-echo-tab';
  const broker = 'bench-echo-broker';
  return [
    { id: tab, type: 'tab', label: 'bench echo', disabled: false, info: '' },
    { id: broker, type: 'mqtt-broker', name: 'node broker (bench)', broker: '127.0.0.1', port: String(brokerPort), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    // utf8 in, the same string out: the echo's payload is the reading's, byte for byte, so the two can be matched.
    { id: 'bench-echo-in', type: 'mqtt in', z: tab, name: '', topic: `apiary/${nodeId}/readings/${READING_CHANNEL}`, qos: '0', datatype: 'utf8', broker, nl: false, rap: true, rh: 0, inputs: 0, x: 150, y: 80, wires: [['bench-echo-out']] },
    { id: 'bench-echo-out', type: 'mqtt out', z: tab, name: '', topic: `apiary-flows/${nodeId}/echo`, qos: '0', retain: 'false', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker, x: 450, y: 80, wires: [] },
  ];
}

/** Adds the echo flow to what Node-RED runs (a full deploy of the default flow plus it). */
async function deployEcho(editor: string, brokerPort: number, nodeId: string): Promise<void> {
  const current = await fetch(new URL('flows', editor));
  if (!current.ok) throw new Error(`GET /flows answered ${current.status}: ${await current.text()}`);
  const flows = (await current.json()) as Record<string, unknown>[];
  const res = await fetch(new URL('flows', editor), {
    method: 'POST',
    body: JSON.stringify([...flows, ...echoFlow(brokerPort, nodeId)]),
    headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
  });
  if (res.status !== 204 && res.status !== 200) throw new Error(`POST /flows answered ${res.status}: ${await res.text()}`);
}

/** Subscribes to the reading topic and the echo topic; the ms between a reading and its echo, `count` times. */
async function echoLatencies(brokerPort: number, nodeId: string, count: number, deploy: () => Promise<void>): Promise<number[]> {
  const readingTopic = `apiary/${nodeId}/readings/${READING_CHANNEL}`;
  const echoTopic = `apiary-flows/${nodeId}/echo`;
  const client = connect(`mqtt://127.0.0.1:${brokerPort}`, { clientId: `bench-flows-${process.pid}-${brokerPort}`, clean: true, reconnectPeriod: 100 });
  try {
    await withTimeout(new Promise<void>((resolve) => client.once('connect', () => resolve())), 10_000, 'the bench client to connect');
    await client.subscribeAsync([readingTopic, echoTopic], { qos: 0 });
    const readingAt = new Map<string, number>();
    const latencies: number[] = [];
    const done = new Promise<void>((resolve) => {
      client.on('message', (topic, payload, packet) => {
        const at = performance.now();
        if (packet.retain) return;
        const key = payload.toString('utf8');
        if (topic === readingTopic) readingAt.set(key, at);
        else if (topic === echoTopic) {
          const sent = readingAt.get(key);
          // An echo of a reading from before we subscribed cannot happen (the flow subscribes later), but is skipped if it does.
          if (sent === undefined) return;
          readingAt.delete(key);
          latencies.push(at - sent);
          if (latencies.length >= count) resolve();
        }
      });
    });
    await deploy();
    await withTimeout(done, TIMEOUT_MS, `${count} echoes on ${echoTopic}`);
    return latencies;
  } finally {
    await client.endAsync(true);
  }
}

async function runOnce(tmp: string, name: string, flows: boolean, plan: FlowsPlan): Promise<FlowsRun> {
  const brokerPort = await freePort();
  const nodeRedPort = flows ? await freePort() : undefined;
  const configFile = path.join(tmp, `${name}.yaml`);
  await writeFile(configFile, config(path.join(tmp, `${name}-data`), nodeRedPort));
  const child = Child.apiary(['--config', configFile, '--port', String(brokerPort), '--speed', '60']);
  try {
    const wait = <T>(promise: Promise<T>, what: string) => Promise.race([withTimeout(promise, TIMEOUT_MS, what), child.died]);
    // Both waiters from the spawn on: a waiter added later would time a line already printed by when it was added.
    const startedLine = child.when(/"time":(\d+),[^\n]*?"nodeId":"([A-Za-z0-9]+)"[^\n]*"msg":"Apiary node started"/);
    const spawnedLine = child.when(/"time":(\d+),[^\n]*?"pid":(\d+)[^\n]*"msg":"Node-RED starting"/);
    const started = await wait(startedLine, 'the "Apiary node started" line');
    const nodeId = started.match[2] ?? '';
    if (nodeRedPort === undefined) {
      await sleep(SETTLE_MS + 5_000); // about when the flows run is measured: Node-RED's start-up, then the settle time
      const node = await memory(child.pid);
      const exit = await child.stop();
      return { flows, startedMs: started.atMs, node, exit };
    }
    const spawned = await wait(spawnedLine, 'the "Node-RED starting" line');
    const editor = `http://127.0.0.1:${nodeRedPort}/`;
    await wait(editorAnswers(editor, child), 'the Node-RED editor');
    // On the log lines' own clock (pino's "time", ms since the epoch): which line came first does not depend on output buffering.
    const answeredAt = Date.now();
    const pid = await nodeRedPid(child.pid, Number(spawned.match[2]));
    await sleep(SETTLE_MS);
    const [node, nodeRed] = await Promise.all([memory(child.pid), memory(pid)]);
    const echoMs = await wait(echoLatencies(brokerPort, nodeId, plan.echoes, () => deployEcho(editor, brokerPort, nodeId)), 'the echo latencies');
    const exit = await child.stop();
    return { flows, startedMs: started.atMs, node, nodeRed, editorAfterStartedMs: answeredAt - Number(started.match[1]), editorAfterSpawnMs: answeredAt - Number(spawned.match[1]), echoMs, exit };
  } finally {
    await child.stop();
  }
}

/** `plan.rounds` rounds, each a start with flows off and one with flows on, alternating which goes first; undefined (and says why) without node-red. */
export async function measureFlows(tmp: string, plan: FlowsPlan, progress: (line: string) => void): Promise<FlowsResults | undefined> {
  try {
    // Resolved as the node resolves it (runtime/extensions/flows/node-red-files.ts), from beside dist/apiary.mjs.
    createRequire(NODE_MAIN).resolve('node-red/package.json');
  } catch {
    progress('flows: skipped, node-red is not installed beside this checkout (`npm install`; it is a devDependency)');
    return undefined;
  }
  const results: FlowsResults = { alone: [], withNodeRed: [] };
  const mb = (m: Memory | undefined) => ((m?.rssKiB ?? Number.NaN) / 1024).toFixed(0);
  const pss = (m: Memory | undefined) => ((m?.pssKiB ?? Number.NaN) / 1024).toFixed(0);
  for (let i = 1; i <= plan.rounds; i += 1) {
    const order = i % 2 === 1 ? [false, true] : [true, false];
    for (const flows of order) {
      const r = await runOnce(tmp, `flows-${flows ? 'on' : 'off'}-${i}`, flows, plan);
      (flows ? results.withNodeRed : results.alone).push(r);
      const exit = r.exit.code === 0 ? '' : `, exit ${String(r.exit.code ?? r.exit.signal)}`;
      progress(flows
        ? `flows round ${i}/${plan.rounds}, node + Node-RED: editor ${r.editorAfterStartedMs?.toFixed(0)} ms after "started" (${r.editorAfterSpawnMs?.toFixed(0)} ms after its spawn), RSS node ${mb(r.node)} MB + Node-RED ${mb(r.nodeRed)} MB (PSS ${pss(r.node)} + ${pss(r.nodeRed)} MB), echo median ${summarize(r.echoMs ?? [])?.median.toFixed(1) ?? '—'} ms${exit}`
        : `flows round ${i}/${plan.rounds}, node alone: RSS ${mb(r.node)} MB (PSS ${pss(r.node)} MB)${exit}`);
    }
  }
  return results;
}

