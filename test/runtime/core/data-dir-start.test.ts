/**
 * What a new user hit with the data dir, run as the user runs it (the
 * compiled CLI in a child process): two nodes on one dir, an impossible or
 * unusable dir, a start that fails on a busy port, and a stale lock after kill -9.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiary } from '../../support/cli.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

const CONFIG = `
device:
  simulation: { speed: 600 }
log: { level: info }
`;

describe('the data dir at start', () => {
  let dir: string;
  let config: string;
  const running: NodeProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-data-dir-'));
    config = path.join(dir, 'apiary.yaml');
    await writeFile(config, CONFIG);
  });
  afterAll(async () => {
    for (const node of running) if (node.child.exitCode === null) node.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (dataDir: string) => {
    const node = await startNodeProcess(['--config', config, '--data-dir', dataDir, '--port', '0']);
    running.push(node);
    return node;
  };

  it('refuses a second node on the same data dir, naming the process that holds it', async () => {
    const dataDir = path.join(dir, 'shared');
    const first = await start(dataDir);
    const second = await apiary(['start', '--config', config, '--data-dir', dataDir, '--port', '0'], dir);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('APIARY_DATA_DIR_LOCKED');
    expect(second.stderr).toContain(`process ${first.child.pid}`);
    expect(second.stderr).toContain('fix:');
    expect(second.stdout).not.toContain('Apiary node stopped'); // it never ran
    // The first node is untouched: nothing of it was "recovered", and it stops cleanly and releases the lock.
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(first.output()).not.toContain('did not shut down cleanly');
    expect(existsSync(path.join(dataDir, 'node.lock'))).toBe(false);
    const third = await start(dataDir);
    third.child.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
    expect(third.output()).not.toContain('did not shut down cleanly');
  });

  it('takes over the lock of a node killed with SIGKILL, and says what recovery cut', async () => {
    const dataDir = path.join(dir, 'killed');
    const first = await start(dataDir);
    first.child.kill('SIGKILL');
    await first.exited;
    const lock = JSON.parse(await readFile(path.join(dataDir, 'node.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(first.child.pid);
    const again = await start(dataDir);
    expect(again.output()).toContain('took over the data dir lock of a node that no longer runs');
    expect(again.output()).toMatch(/did not shut down cleanly; (stream logs checked, nothing was cut|recovery cut )/);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  });

  it('fails at once, with a fix, on a data dir that cannot be made (/proc) or is a file', async () => {
    const proc = await apiary(['start', '--config', config, '--data-dir', '/proc/apiary-test', '--port', '0'], dir);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toContain('APIARY_DATA_DIR_INVALID');
    expect(proc.stderr).toContain('fix: choose a folder on a real disk');
    const id = await apiary(['id', '--data-dir', '/proc/apiary-test/deeper'], dir);
    expect(id.code).toBe(1);
    expect(id.stderr).toContain('APIARY_DATA_DIR_INVALID');

    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    for (const dataDir of [file, path.join(file, 'below')]) {
      const refused = await apiary(['start', '--config', config, '--data-dir', dataDir, '--port', '0'], dir);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`APIARY_DATA_DIR_INVALID: cannot use ${dataDir} as the data dir: ${file} is a file, not a folder`);
      expect(refused.stderr).toContain('fix: move the file aside');
    }
  }, 15_000);

  it('leaves nothing behind when the broker port is in use (no identity in a new folder)', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const dataDir = path.join(dir, 'new', 'node');
      const failed = await apiary(['start', '--config', config, '--data-dir', dataDir, '--port', String(port), '--host', '127.0.0.1'], dir);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('APIARY_BROKER_LISTEN_FAILED');
      expect(existsSync(path.join(dir, 'new'))).toBe(false);
      // An existing data dir keeps what it had, and gets no identity either.
      const existing = path.join(dir, 'existing');
      await mkdir(existing);
      await writeFile(path.join(existing, 'notes.txt'), 'mine');
      const again = await apiary(['start', '--config', config, '--data-dir', existing, '--port', String(port), '--host', '127.0.0.1'], dir);
      expect(again.code).toBe(1);
      expect(await readdir(existing)).toEqual(['notes.txt']);
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  it('makes the data dir owner-only (0700), also one that existed', async () => {
    const dataDir = path.join(dir, 'private');
    await mkdir(dataDir, { mode: 0o755 });
    const node = await start(dataDir);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
