/**
 * For the palette's tests: the bundled palette (built as the root build
 * builds it, by the global setup), node-red-node-test-helper with types, and a real Apiary node
 * (simulated beehive, aedes on a loopback port) for the palette to talk to.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { afterAll, afterEach, beforeAll } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createNode } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import type { ConfigInput } from '../../../runtime/config/schema.js';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import type { NodeAPI, NodeMessage, NodeStatus } from '../../../flows/node-red-apiary/src/red.js';

const require = createRequire(import.meta.url);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PALETTE_DIR = path.join(ROOT, 'flows/node-red-apiary');

/** The bundle Node-RED loads (built once per run by test/support/global-setup.ts, as `npm run build` builds it). */
export function loadPalette(): (RED: NodeAPI) => void {
  return require(path.join(PALETTE_DIR, 'dist/apiary.js')) as (RED: NodeAPI) => void;
}

/** A node of a loaded test flow, as the helper returns it (a real Node-RED node, its methods spied on). */
export interface HelperNode {
  readonly id: string;
  on(event: 'input', listener: (msg: NodeMessage) => void): void;
  on(event: 'call:status', listener: (call: { args: [NodeStatus] }) => void): void;
  on(event: 'call:error' | 'call:warn', listener: (call: { args: unknown[] }) => void): void;
  receive(msg: NodeMessage): void;
}

interface Agent {
  get(url: string): Promise<{ status: number; body: unknown }>;
}

export interface TestHelper {
  init(nodeRedPath: string, settings?: Record<string, unknown>): void;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  load(nodes: unknown, flow: Record<string, unknown>[], credentials?: Record<string, Record<string, string>>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): HelperNode | null;
  request(): Agent;
}

export function testHelper(): TestHelper {
  const helper = require('node-red-node-test-helper') as TestHelper;
  helper.init(require.resolve('node-red'));
  return helper;
}

/** The node of a loaded flow, or a clear failure. */
export function nodeOf(helper: TestHelper, id: string): HelperNode {
  const node = helper.getNode(id);
  if (!node) throw new Error(`node ${id} is not in the loaded flow`);
  return node;
}

/** The rule the tests wait for: raised on the first temperature reading. */
export const WARM_RULE = { id: 'warm', input: 'reading.temperature', above: -50, message: 'Any temperature at all' };

export interface RunningNode {
  node: ApiaryNode;
  dir: string;
  stop(): Promise<void>;
}

/** A simulated beehive at 600x speed (a reading of each channel about every 100 ms), with the default rules and WARM_RULE. */
export async function startApiaryNode(extra: Partial<ConfigInput> = {}, dataDir?: string): Promise<RunningNode> {
  const dir = dataDir ?? await mkdtemp(path.join(os.tmpdir(), 'apiary-node-red-'));
  const node = createNode(parseConfig({
    node: { dataDir: dir, name: 'Palette test hive' },
    broker: { port: 0 },
    homeAssistant: { enabled: false },
    device: {
      simulation: { speed: 600, preSwarm: '30s', swarm: '3m' },
      sensors: { temperature: { interval: '1m' }, humidity: { interval: '1m' }, weight: { interval: '1m' }, sound: { interval: '1m' } },
    },
    decisions: [WARM_RULE],
    ...extra,
  }), pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' }));
  await node.start();
  return {
    node, dir,
    stop: async () => {
      await node.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Clients connected to the node's broker now (`apiary status` broker.clients). */
export async function brokerClients(node: ApiaryNode): Promise<number> {
  const status = await node.status();
  return (status.broker as { clients: number }).clients;
}

/** Polls `check` until it holds; the failure names what was awaited. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Collects what a node receives. */
export function collect(node: HelperNode): NodeMessage[] {
  const got: NodeMessage[] = [];
  node.on('input', (msg) => got.push(msg));
  return got;
}

/** Collects a node's status calls. */
export function statuses(node: HelperNode): NodeStatus[] {
  const got: NodeStatus[] = [];
  node.on('call:status', (call) => got.push(call.args[0]));
  return got;
}

/**
 * The hooks every palette test file needs: the bundled palette loaded, a real
 * Apiary node and the helper's Node-RED server started before the tests, each
 * test's flow unloaded after it, both stopped at the end. The fields are set
 * once beforeAll has run.
 */
export function paletteSuite(helper: TestHelper): { palette: (RED: NodeAPI) => void; apiary: RunningNode } {
  const suite = {} as { palette: (RED: NodeAPI) => void; apiary: RunningNode };
  beforeAll(async () => {
    suite.palette = loadPalette();
    suite.apiary = await startApiaryNode();
    await helper.startServer();
  });
  afterEach(() => helper.unload());
  afterAll(async () => {
    await helper.stopServer();
    await (suite.apiary as RunningNode | undefined)?.stop();
  });
  return suite;
}
