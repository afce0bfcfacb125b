/**
 * The contract every extension keeps, checked on each entry of EXTENSIONS and
 * of every application (the list is built from those arrays, so a new
 * extension is covered without touching this file). On a real kernel node
 * (aedes on a loopback port, real files, the simulated device):
 *  - after stop() it holds no node-event listener, and the process holds no
 *    handle or timer it did not hold before the node started;
 *  - stop() is idempotent: a second one resolves, stops nothing again, and
 *    changes nothing;
 *  - its status() and the node's survive a JSON round trip;
 *  - where its enabled() can be false: on a node where it is off it is never
 *    loaded, and its declared commands answer that they are unavailable.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPLICATIONS } from '../../../runtime/apps/index.js';
import { CommandRegistry } from '../../../runtime/commands/command-registry.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import type { ApiaryConfig } from '../../../runtime/config/schema.js';
import { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import type { Extension, ExtensionEntry } from '../../../runtime/core/extension.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { EXTENSIONS } from '../../../runtime/extensions/index.js';
import { waitFor } from '../../support/mesh-node.js';

const logger = pino({ level: 'silent' });

interface Case { readonly entry: ExtensionEntry; readonly app: string | undefined; readonly label: string }
const CASES: Case[] = [
  ...EXTENSIONS.map((entry) => ({ entry, app: undefined, label: entry.name })),
  ...APPLICATIONS.flatMap((app) => app.extensions.map((entry) => ({ entry, app: app.name, label: `${entry.name} (app ${app.name})` }))),
];

/**
 * Configs tried in turn: an extension is checked running on the first one
 * that enables it, and switched off on the first one that disables it. A new
 * extension enabled by none of these fails below with a message saying so.
 */
const variants = (uplinkUrl: string, flowsPort = 1880): { name: string; raw: Record<string, unknown> }[] => [
  { name: 'defaults', raw: {} },
  // The uplink retries an unused loopback port for as long as it runs.
  { name: 'mesh with an uplink', raw: { mesh: { uplink: { url: uplinkUrl } } } },
  { name: 'mesh off', raw: { mesh: { enabled: false } } },
  { name: 'home assistant off', raw: { homeAssistant: { enabled: false } } },
  { name: 'model updates off', raw: { models: { meshUpdates: false } } },
  { name: 'systemd notify on', raw: { systemd: { notify: 'on' } } },
  // A real Node-RED child process (node-red is a devDependency), stopped with the node.
  { name: 'flows on', raw: { flows: { enabled: true, port: flowsPort } } },
  // Voice with its Wyoming endpoint (on a free port) and its mDNS announcement on loopback.
  { name: 'voice on', raw: { voice: { enabled: true, wyoming: { enabled: true, port: 0, mdns: true, mdnsInterface: '127.0.0.1' } } } },
  { name: 'payments on', raw: { payments: { enabled: true } } },
  // The node's own MCP endpoint on a free loopback port.
  { name: 'mcp endpoint on', raw: { mcp: { http: { enabled: true, port: 0 } } } },
  // Tasks between nodes without a mandate: it offers nothing, and every request would wait for the owner.
  { name: 'tasks on', raw: { tasks: { enabled: true, offers: [{ kind: 'reading-at' }] } } },
];

/** A loopback port nothing listens on (bound, then closed). */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The process's active handles and requests (libuv), counted by type. */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** What `after` holds beyond `before`: `Timeout +2`, `TCPSocketWrap +1`. */
function extra(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after].filter(([type, n]) => n > (before.get(type) ?? 0)).map(([type, n]) => `${type} +${n - (before.get(type) ?? 0)}`);
}

/**
 * Waits (up to a bound) for closed sockets and cleared timers to leave the
 * list: a socket's close completes on a later turn of the event loop. What is
 * still there at the end is what the caller asserts on.
 */
async function settledExtra(before: Map<string, number>): Promise<string[]> {
  for (let i = 0; i < 250; i++) { // up to 5 s: a loaded 2-core board is slow to run the close callbacks
    if (extra(before, resources()).length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return extra(before, resources());
}

/** A copy of `entry` that records its loads, the extensions it creates and their stops. */
function spied(entry: ExtensionEntry) {
  const record = { loads: 0, stops: 0, created: [] as Extension[] };
  const wrapped: ExtensionEntry = {
    ...entry,
    load: async () => {
      record.loads += 1;
      const factory = await entry.load();
      return (config) => {
        const extension = factory(config);
        record.created.push(extension);
        const stop = extension.stop.bind(extension);
        // The same object, its stop() counted (an extension may keep state on itself).
        return Object.assign(extension, { stop: () => { record.stops += 1; return stop(); } });
      };
    },
  };
  return { wrapped, record };
}

const roundTrip = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** The node's status without the two values that move with the wall clock. */
async function steadyStatus(node: ApiaryNode): Promise<Record<string, unknown>> {
  const status = await node.status();
  delete status.uptimeS;
  delete status.nodeTime;
  return status;
}

describe('the extension contract', () => {
  let root: string;
  let uplinkUrl: string;
  let flowsPort: number;
  let runs = 0;

  const configFor = async (c: Case, raw: Record<string, unknown>): Promise<ApiaryConfig> => {
    const dataDir = await mkdtemp(path.join(root, `${c.entry.name}-${runs++}-`));
    return parseConfig({ ...raw, ...(c.app ? { app: c.app } : {}), node: { dataDir }, broker: { port: 0 }, device: { simulation: { speed: 600 } } });
  };

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'apiary-ext-contract-'));
    uplinkUrl = `mqtt://127.0.0.1:${await unusedPort()}`;
    flowsPort = await unusedPort();
    // The kernel alone, started and stopped once: what stays after it (none expected) is not any extension's.
    const before = resources();
    const warmUp = new ApiaryNode(parseConfig({ node: { dataDir: await mkdtemp(path.join(root, 'kernel-')) }, broker: { port: 0 } }), logger);
    await warmUp.start();
    await warmUp.stop();
    expect(await settledExtra(before), 'the kernel alone leaves handles or timers behind').toEqual([]);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('covers every extension of EXTENSIONS and of every application', () => {
    expect(CASES.length).toBe(EXTENSIONS.length + APPLICATIONS.reduce((n, app) => n + app.extensions.length, 0));
    expect(CASES.map((c) => c.entry.name)).toEqual(expect.arrayContaining(['recorder', 'rules', 'uplink', 'home-assistant', 'beehive', 'dew-point']));
  });

  describe.each(CASES)('$label', (c) => {
    it('runs, and after stop() holds no listener, handle or timer; a second stop() changes nothing; its status is plain JSON', async () => {
      const variant = variants(uplinkUrl, flowsPort).find((v) => c.entry.enabled(parseConfig({ ...v.raw, ...(c.app ? { app: c.app } : {}) })));
      expect(variant, `no config in variants() enables "${c.entry.name}": add one`).toBeDefined();
      const config = await configFor(c, variant?.raw ?? {});
      const { wrapped, record } = spied(c.entry);
      const before = resources();

      const node = new ApiaryNode(config, logger, [wrapped]);
      try {
        await node.start();
        // At least one reading through the whole pipeline, so its listeners have run.
        await waitFor(() => Object.keys(node.latest.readings).length > 0, 10_000, () => 'no reading after start');
        const running = await node.status();
        expect(running.extensions).toEqual({ [c.entry.name]: { state: 'running' } });
        expect(record.loads).toBe(1);
        const extension = record.created[0];
        expect(extension?.name).toBe(c.entry.name);
        // Its own status, and the node's with it merged in, are plain JSON (no Map, Date, NaN, undefined in arrays...).
        const own = extension?.status?.() ?? {};
        expect(roundTrip(own)).toStrictEqual(own);
        expect(roundTrip(running)).toEqual(running);
        expect(JSON.stringify(roundTrip(running))).toBe(JSON.stringify(running));
      } finally {
        await node.stop();
      }
      expect(record.stops).toBe(1);
      expect(node.listenerCount(c.entry.name)).toBe(0);
      expect(await settledExtra(before), `${c.entry.name} left handles or timers behind`).toEqual([]);

      const afterFirst = await steadyStatus(node);
      expect(afterFirst.extensions).toEqual({ [c.entry.name]: { state: 'stopped' } });
      await expect(node.stop()).resolves.toBeUndefined();
      expect(record.stops).toBe(1);
      expect(await steadyStatus(node)).toEqual(afterFirst);
      expect(extra(before, resources())).toEqual([]);
    });

    // Only for an extension some config switches off (the uplink URL does not matter to enabled()).
    const disabling = variants('mqtt://127.0.0.1:1').find((v) => !c.entry.enabled(parseConfig({ ...v.raw, ...(c.app ? { app: c.app } : {}) })));
    if (disabling) it(`is never loaded on a node where it is off (${disabling.name}); its commands answer that they are unavailable`, async () => {
      const config = await configFor(c, disabling.raw);
      const { wrapped, record } = spied(c.entry);
      const node = new ApiaryNode(config, logger, [wrapped]);
      try {
        await node.start();
        expect(record.loads).toBe(0);
        expect((await node.status()).extensions).toEqual({});
        const declared = new CommandRegistry();
        c.entry.declareCommands?.(declared);
        for (const { name } of declared.list()) {
          const spec = node.commands.get(name);
          expect(spec, `command ${name} is not declared on a node where ${c.entry.name} is off`).toBeDefined();
          const why = spec?.unavailable?.();
          expect(why, `command ${name} does not say why it is unavailable`).toMatch(/\w/);
          expect(await node.commands.run(name, {})).toEqual({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: why });
        }
      } finally {
        await node.stop();
      }
      expect(record.loads).toBe(0);
      expect(node.listenerCount(c.entry.name)).toBe(0);
    });
  });
});
