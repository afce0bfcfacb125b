/**
 * The systemd extension, in a real `apiary start` child process, with a fake
 * `systemd-notify` first on PATH that appends its arguments to a file: what
 * systemd would receive (READY, WATCHDOG pings, STOPPING), and nothing when
 * the node is not run by systemd or the config says off.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { systemdNotifyEnabled } from '../../../../runtime/extensions/systemd/config.js';
import { watchdogIntervalMs } from '../../../../runtime/extensions/systemd/notifier.js';
import { spawnNodeProcess, type SpawnedNode } from '../../../support/node-process.js';

let dir: string;
let log: string;
let running: SpawnedNode | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-systemd-'));
  log = path.join(dir, 'notify.log');
  // One line per call: the arguments, as systemd-notify got them.
  await writeFile(path.join(dir, 'systemd-notify'), `#!/bin/sh\necho "$*" >> '${log}'\n`);
  await chmod(path.join(dir, 'systemd-notify'), 0o755);
});

afterEach(async () => {
  if (running && running.child.exitCode === null) {
    running.child.kill('SIGKILL');
    await running.exited;
  }
  running = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function lines(): Promise<string[]> {
  return existsSync(log) ? (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '') : [];
}

/** Waits (bounded) until the fake has been called in a way `done` accepts. */
async function waitForLines(done: (l: string[]) => boolean, timeoutMs = 15_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const current = await lines();
    if (done(current)) return current;
    if (Date.now() > until) throw new Error(`systemd-notify calls so far:\n${current.join('\n')}\nnode output:\n${running?.output() ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startNode(env: NodeJS.ProcessEnv, extraArgs: string[] = []): SpawnedNode {
  running = spawnNodeProcess(['--port', '0', '--data-dir', path.join(dir, 'data'), ...extraArgs], {
    PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`,
    NOTIFY_SOCKET: '',
    WATCHDOG_USEC: '',
    ...env,
  });
  return running;
}

describe('systemd extension', () => {
  it('under systemd: READY with a status line once started, WATCHDOG pings while running, STOPPING on SIGTERM', async () => {
    const node = startNode({ NOTIFY_SOCKET: path.join(dir, 'notify.sock'), WATCHDOG_USEC: '200000' });
    await node.waitFor(/is running/);
    const seen = await waitForLines((l) => l.some((x) => x.startsWith('--ready')) && l.filter((x) => x === 'WATCHDOG=1').length >= 3);
    const ready = seen.find((x) => x.startsWith('--ready'));
    expect(ready).toMatch(/^--ready --status=node [a-z2-7]{12} running \(simulated-beehive\)$/);
    expect(seen.every((x) => x.startsWith('--ready') || x === 'WATCHDOG=1')).toBe(true);
    expect(seen.some((x) => x.includes('STOPPING'))).toBe(false);

    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    const after = await lines();
    expect(after.at(-1)).toBe('--status=stopping STOPPING=1');
    expect(after.filter((x) => x.includes('STOPPING'))).toHaveLength(1);
  });

  it('without a watchdog (no WATCHDOG_USEC) it says READY and STOPPING, and pings nothing', async () => {
    const node = startNode({ NOTIFY_SOCKET: path.join(dir, 'notify.sock') });
    await node.waitFor(/is running/);
    await waitForLines((l) => l.some((x) => x.startsWith('--ready')));
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    const seen = await lines();
    expect(seen.filter((x) => x === 'WATCHDOG=1')).toEqual([]);
    expect(seen).toHaveLength(2);
  });

  it('not under systemd (no NOTIFY_SOCKET), or with systemd.notify: off, it never runs systemd-notify', async () => {
    const plain = startNode({ WATCHDOG_USEC: '200000' });
    await plain.waitFor(/is running/);
    plain.child.kill('SIGTERM');
    expect((await plain.exited).code).toBe(0);
    expect(await lines()).toEqual([]);

    const config = path.join(dir, 'off.yaml');
    await writeFile(config, 'systemd:\n  notify: off\n');
    const off = startNode({ NOTIFY_SOCKET: path.join(dir, 'notify.sock'), WATCHDOG_USEC: '200000' }, ['--config', config]);
    await off.waitFor(/is running/);
    off.child.kill('SIGTERM');
    expect((await off.exited).code).toBe(0);
    expect(await lines()).toEqual([]);
  });

  it('is enabled by NOTIFY_SOCKET (auto), always (on) or never (off)', () => {
    expect(systemdNotifyEnabled('auto', { NOTIFY_SOCKET: '/run/systemd/notify' })).toBe(true);
    expect(systemdNotifyEnabled('auto', {})).toBe(false);
    expect(systemdNotifyEnabled('auto', { NOTIFY_SOCKET: '' })).toBe(false);
    expect(systemdNotifyEnabled('on', {})).toBe(true);
    expect(systemdNotifyEnabled('off', { NOTIFY_SOCKET: '/run/systemd/notify' })).toBe(false);
    expect(parseConfig({}).systemd.notify).toBe('auto');
    expect(() => parseConfig({ systemd: { notify: 'yes' } })).toThrow(/field "systemd\.notify": got "yes"; expected "auto" \(when started by systemd\), "on" or "off"/);
  });

  it('pings at half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '2' }, 42)).toBe(10);
  });
});
