/**
 * The supervisor on its own, with stand-in `red.js` scripts run as real
 * child processes (one that exits at once, one that never opens and ignores
 * SIGTERM, one that records how it was started), and the checks that stop
 * a misconfigured Node-RED before it runs.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { Counters } from '../../../../runtime/counters.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { defaultFlow, writeDefaultFlow } from '../../../../runtime/extensions/flows/default-flow.js';
import { findNodeRed, nodeRedSettings } from '../../../../runtime/extensions/flows/node-red-files.js';
import { NodeRedSupervisor, type SupervisorOptions } from '../../../../runtime/extensions/flows/supervisor.js';
import { waitFor } from '../../../support/mesh-node.js';
import { alive, flowsNode, silent } from './node-red-helpers.js';

let dir: string;
let supervisor: NodeRedSupervisor | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-flows-sup-'));
});

afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in for node-red's red.js (CommonJS, as the real one). */
async function fakeRed(name: string, body: string): Promise<string> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'package.json'), '{"type":"commonjs"}\n');
  await writeFile(path.join(folder, 'red.js'), body);
  return path.join(folder, 'red.js');
}

function supervise(redJs: string, counters: Counters, extra: Partial<SupervisorOptions> = {}): NodeRedSupervisor {
  supervisor = new NodeRedSupervisor({
    redJs,
    heapMb: 96,
    prepare: () => Promise.resolve({ userDir: path.join(dir, 'user'), settingsFile: path.join(dir, 'user', 'settings.cjs') }),
    env: { APIARY_NOTIFY_TOPIC: 'apiary-flows/x/notify' },
    url: 'http://127.0.0.1:1/',
    restart: { delay: 50, maxDelay: 200, loopCrashes: 3, window: 600_000 },
    startTimeoutMs: 60_000,
    stopTimeoutMs: 10_000,
    logger: silent,
    counters,
    ...extra,
  });
  return supervisor;
}

describe('the Node-RED supervisor', () => {
  it('starts red.js with the heap cap, the user dir, the settings file and the flow environment, and is running once the editor is up', async () => {
    const seen = path.join(dir, 'seen.json');
    const red = await fakeRed('recording', `require('fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2), notify: process.env.APIARY_NOTIFY_TOPIC }));
console.log('Server now running at http://127.0.0.1:1/');
setInterval(() => {}, 1000);\n`);
    const s = supervise(red, new Counters());
    s.start();
    await waitFor(() => s.status().state === 'running', 20_000, () => JSON.stringify(s.status()));
    expect(JSON.parse(await readFile(seen, 'utf8'))).toEqual({
      execArgv: ['--max-old-space-size=96'],
      argv: ['--userDir', path.join(dir, 'user'), '--settings', path.join(dir, 'user', 'settings.cjs')],
      notify: 'apiary-flows/x/notify',
    });
    const pid = s.status().pid ?? 0;
    await s.stop();
    expect(alive(pid)).toBe(false);
    expect(s.status()).toMatchObject({ state: 'stopped', pid: null, crashes: 0, restarts: 0, lastExit: { code: null, signal: 'SIGTERM' } });
  });

  it('restarts a crashing Node-RED, and after loopCrashes crashes within the window leaves it crashed and counted; start() begins a fresh history', async () => {
    const counters = new Counters();
    const s = supervise(await fakeRed('crashing', 'process.exit(3);\n'), counters);
    s.start();
    await waitFor(() => s.status().state === 'crashed', 20_000, () => JSON.stringify(s.status()));
    expect(s.status()).toMatchObject({ state: 'crashed', pid: null, crashes: 3, restarts: 2, lastExit: { code: 3, signal: null } });
    expect(s.status().lastError).toMatch(/3 crashes within 600000 ms: restart loop/);
    expect(counters.snapshot()).toMatchObject({ 'flows.crashes': 3, 'flows.restarts': 2, 'flows.restart_loops': 1 });

    s.start();
    await waitFor(() => s.status().state === 'crashed' && s.status().crashes === 6, 20_000, () => JSON.stringify(s.status()));
    expect(counters.snapshot()).toMatchObject({ 'flows.crashes': 6, 'flows.restarts': 4, 'flows.restart_loops': 2 });
  });

  it('a stop during start SIGKILLs a Node-RED that ignores SIGTERM after stopTimeout, and counts no crash', async () => {
    const marker = path.join(dir, 'started');
    const red = await fakeRed('stubborn', `process.on('SIGTERM', () => {});
require('fs').writeFileSync(${JSON.stringify(marker)}, '');
setInterval(() => {}, 1000);\n`);
    const counters = new Counters();
    const s = supervise(red, counters, { stopTimeoutMs: 200 });
    s.start();
    await waitFor(() => existsSync(marker), 20_000); // it runs (and has its SIGTERM handler), and never says it is up
    expect(s.status().state).toBe('starting');
    const pid = s.status().pid ?? 0;
    await s.stop();
    expect(alive(pid)).toBe(false);
    expect(s.status()).toMatchObject({ state: 'stopped', pid: null, crashes: 0, restarts: 0, lastExit: { signal: 'SIGKILL' } });
    expect(counters.get('flows.crashes')).toBe(0);
  });

  it('a Node-RED that never opens its editor is killed at startTimeout and counted as a crash', async () => {
    const counters = new Counters();
    const s = supervise(await fakeRed('silent', 'setInterval(() => {}, 1000);\n'), counters, { startTimeoutMs: 1_000, restart: { delay: 50, maxDelay: 50, loopCrashes: 1, window: 600_000 } });
    s.start();
    await waitFor(() => s.status().state === 'crashed', 20_000, () => JSON.stringify(s.status()));
    expect(s.status()).toMatchObject({ crashes: 1, restarts: 0, lastExit: { signal: 'SIGKILL' } });
  });
});

describe('Node-RED configuration', () => {
  it('flows is off by default, on loopback:1880 with a 128 MB heap, and bad values name the field', () => {
    const config = parseConfig({});
    expect(config.flows).toMatchObject({ enabled: false, host: '127.0.0.1', port: 1880, heapMb: 128, defaultFlow: true, restart: { delay: 1_000, maxDelay: 60_000, loopCrashes: 5, window: 600_000 } });
    expect(() => parseConfig({ flows: { port: 0 } })).toThrow(/flows\.port/);
    expect(() => parseConfig({ flows: { heapMb: 16 } })).toThrow(/flows\.heapMb/);
  });

  it('refuses an editor off loopback without a password, naming `apiary flows passwd`', () => {
    const flows = parseConfig({ flows: { host: '0.0.0.0' } }).flows;
    expect(() => nodeRedSettings(flows, dir, 'secret', undefined, undefined)).toThrow(expect.objectContaining({ code: ErrorCodes.FLOWS_UNAVAILABLE, hint: expect.stringMatching(/apiary flows passwd/) as unknown }));
    const guarded = nodeRedSettings(flows, dir, 'secret', { username: 'keeper', password: '$2a$10$abc' }, '/palette');
    expect(guarded).toMatchObject({ uiHost: '0.0.0.0', adminAuth: { type: 'credentials' }, nodesDir: ['/palette'] });
    expect(nodeRedSettings(parseConfig({}).flows, dir, 'secret', undefined, undefined)).not.toHaveProperty('adminAuth');
  });

  it('a flows.nodeRed with no Node-RED fails the extension with the fix; the node runs on and flows/status says why', async () => {
    const flows = parseConfig({ flows: { nodeRed: dir } }).flows;
    expect(() => findNodeRed(flows)).toThrow(expect.objectContaining({ code: ErrorCodes.FLOWS_UNAVAILABLE, hint: expect.stringMatching(/flows\.nodeRed/) as unknown }));
    const node = flowsNode(path.join(dir, 'data'), { nodeRed: dir });
    try {
      await node.start();
      const { extensions } = await node.status() as { extensions: Record<string, { state: string; error?: string }> };
      expect(extensions.flows?.state).toBe('failed');
      expect(extensions.flows?.error).toMatch(/APIARY_FLOWS_UNAVAILABLE: flows\.nodeRed: no Node-RED at/);
      expect(await node.commands.run('flows/status', {})).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID });
      expect((await node.commands.run('status', {})).ok).toBe(true);
    } finally {
      await node.stop();
    }
  });

  it('writes the default flow only into a user dir without one', async () => {
    expect(await writeDefaultFlow(dir)).toBe(true);
    expect(JSON.parse(await readFile(path.join(dir, 'flows.json'), 'utf8'))).toEqual(defaultFlow());
    await writeFile(path.join(dir, 'flows.json'), '[]\n');
    expect(await writeDefaultFlow(dir)).toBe(false);
    expect(await readFile(path.join(dir, 'flows.json'), 'utf8')).toBe('[]\n');
  });
});
