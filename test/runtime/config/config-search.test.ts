/**
 * The packaged `apiary` looks for its config on the boot partition, then in
 * /etc (APIARY_CONFIG_PATH), with data in /var/lib/apiary (APIARY_DATA_DIR):
 * here with temp dirs standing in for those places.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSearchFromEnv } from '../../../runtime/config/config-search.js';
import { loadConfig } from '../../../runtime/config/load-config.js';
import { ErrorCodes } from '../../../runtime/errors.js';

describe('config search path', () => {
  let dir: string;
  let boot: string;
  let etc: string;
  let cwd: string;
  let search: { files: string[]; dataDir: string };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-search-'));
    boot = path.join(dir, 'boot', 'apiary.yaml');
    etc = path.join(dir, 'etc', 'apiary.yaml');
    cwd = path.join(dir, 'home');
    await Promise.all([mkdir(path.dirname(boot)), mkdir(path.dirname(etc)), mkdir(cwd)]);
    search = { files: [boot, etc], dataDir: path.join(dir, 'var') };
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('reads the first file that exists: the boot partition wins over /etc', async () => {
    await writeFile(etc, 'node: { name: from-etc }\n');
    expect(loadConfig({ cwd, search }).file).toBe(etc);
    expect(loadConfig({ cwd, search }).config.node.name).toBe('from-etc');
    await writeFile(boot, 'node: { name: from-boot }\n');
    expect(loadConfig({ cwd, search }).config.node.name).toBe('from-boot');
  });

  it('gives a found config without node.dataDir the search data dir; one that names it keeps it', async () => {
    await writeFile(boot, 'log: { level: warn }\n');
    expect(loadConfig({ cwd, search }).config.node.dataDir).toBe(search.dataDir);
    await writeFile(boot, 'node: { dataDir: ./here }\n');
    expect(loadConfig({ cwd, search }).config.node.dataDir).toBe(path.join(path.dirname(boot), 'here'));
    expect(loadConfig({ cwd, search, overrides: { dataDir: '/elsewhere' } }).config.node.dataDir).toBe('/elsewhere');
  });

  it('with nothing found, runs on the defaults with the search data dir', () => {
    const loaded = loadConfig({ cwd, search });
    expect(loaded.file).toBeUndefined();
    expect(loaded.config.node.dataDir).toBe(search.dataDir);
  });

  it('--config comes first; with a search path, ./apiary.yaml is not read (the installed command serves the system\'s node)', async () => {
    await writeFile(etc, 'node: { name: from-etc }\n');
    await writeFile(path.join(cwd, 'apiary.yaml'), 'node: { name: local }\n');
    expect(loadConfig({ cwd, search }).config.node.name).toBe('from-etc');
    const explicit = loadConfig({ cwd, search, file: 'apiary.yaml' });
    expect(explicit.config.node.name).toBe('local');
    expect(explicit.config.node.dataDir).toBe(path.join(cwd, '.apiary'));
    // Without a search path (a git checkout, npm start): ./apiary.yaml as before.
    expect(loadConfig({ cwd, search: { files: [], dataDir: undefined } }).config.node.name).toBe('local');
  });

  it('an invalid first-boot config is refused naming the file, the field and the fix (not skipped for /etc)', async () => {
    await writeFile(etc, 'node: { name: fine }\n');
    await writeFile(boot, 'broker:\n  port: 99999\n');
    let error: unknown;
    try {
      loadConfig({ cwd, search });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
    expect(String((error as Error).message)).toContain(boot);
    expect(String((error as Error).message)).toMatch(/field "broker\.port": got 99999/);
  });

  it('reads APIARY_CONFIG_PATH (absolute entries, in order) and APIARY_DATA_DIR', () => {
    expect(configSearchFromEnv({ APIARY_CONFIG_PATH: '/boot/firmware/apiary.yaml:relative.yaml::/etc/apiary/apiary.yaml', APIARY_DATA_DIR: '/var/lib/apiary' }))
      .toEqual({ files: ['/boot/firmware/apiary.yaml', '/etc/apiary/apiary.yaml'], dataDir: '/var/lib/apiary' });
    expect(configSearchFromEnv({})).toEqual({ files: [], dataDir: undefined });
    expect(configSearchFromEnv({ APIARY_DATA_DIR: 'var' }).dataDir).toBeUndefined();
  });
});
