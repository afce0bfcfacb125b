/**
 * The bundle runs from V8's code cache (runtime/cli/code-cache.ts): the
 * first start writes it, later ones take it, and a cache that is damaged,
 * stale or cannot be written never stops the CLI. Real processes of the built
 * CLI; APIARY_DEBUG=1 makes the loader say what it did with the cache.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { codeCacheDir, codeCacheFile, MAX_FILES, writeCodeCache } from '../../../runtime/cli/code-cache.js';
import { BUILT_BUNDLE, BUILT_CLI } from '../../support/global-setup.js';

const run = promisify(execFile);

async function apiary(args: string[], env: Record<string, string>): Promise<{ stdout: string; cache: string }> {
  const { stdout, stderr } = await run(process.execPath, [BUILT_CLI, ...args], { env: { ...process.env, APIARY_DEBUG: '1', ...env }, timeout: 60_000 });
  const cache = /apiary: code cache (\w+)/.exec(stderr)?.[1];
  if (cache === undefined) throw new Error(`the loader did not say what it did with the code cache; stderr:\n${stderr}`);
  return { stdout, cache };
}

const cacheFiles = async (dir: string) => (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.v8cache'));

describe('the code cache of the bundled CLI', () => {
  let tmp = '';
  beforeEach(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'apiary-code-cache-')); });
  afterEach(async () => { await rm(tmp, { recursive: true, force: true }); });

  it('is written by the first run and taken by the next, which answers the same', async () => {
    const dir = path.join(tmp, 'cache');
    const first = await apiary(['--help'], { APIARY_CODE_CACHE_DIR: dir });
    expect(first.cache).toBe('missing');
    const files = await cacheFiles(dir);
    expect(files).toHaveLength(1);
    expect((await stat(path.join(dir, files[0]!))).size).toBeGreaterThan(100_000);
    expect(((await stat(dir)).mode & 0o777).toString(8)).toBe('700');
    const second = await apiary(['--help'], { APIARY_CODE_CACHE_DIR: dir });
    expect(second.cache).toBe('accepted');
    expect(second.stdout).toBe(first.stdout);
    expect(second.stdout).toContain('status');
  });

  it('rejects a damaged cache file, runs from source, and writes it again', async () => {
    const dir = path.join(tmp, 'cache');
    await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir });
    const [name] = await cacheFiles(dir);
    const file = path.join(dir, name!);
    const good = await readFile(file);
    // Same length, every byte flipped (V8 checks a magic number, its version, flags and a checksum).
    await writeFile(file, Buffer.from(good.map((b) => b ^ 0xff)));
    const damaged = await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir });
    expect(damaged.cache).toBe('rejected');
    expect(damaged.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await readFile(file)).equals(Buffer.from(good.map((b) => b ^ 0xff)))).toBe(false);
    expect((await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir })).cache).toBe('accepted');
    // Cut short (a power cut in the middle of a copy by hand: the node itself writes through a rename).
    await writeFile(file, good.subarray(0, 1000));
    expect((await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir })).cache).toBe('rejected');
  });

  it('is off when asked, and a directory that cannot be made only costs the cache', async () => {
    const off = await apiary(['--version'], { APIARY_CODE_CACHE_DIR: 'off' });
    expect(off.cache).toBe('off');
    const blocker = path.join(tmp, 'a-file');
    await writeFile(blocker, 'not a directory');
    const blocked = await apiary(['--version'], { APIARY_CODE_CACHE_DIR: path.join(blocker, 'cache') });
    expect(blocked.cache).toBe('missing');
    expect(blocked.stdout.trim()).toBe(off.stdout.trim());
    expect((await readdir(tmp)).sort()).toEqual(['a-file']);
  });

  it('takes no code from a directory or file that others can write, and writes none there', async () => {
    const open = path.join(tmp, 'shared');
    await mkdir(open);
    await chmod(open, 0o777);
    const inOpen = await apiary(['--version'], { APIARY_CODE_CACHE_DIR: open });
    expect(inOpen.cache).toBe('unsafe');
    expect(await readdir(open)).toEqual([]);

    const dir = path.join(tmp, 'cache');
    await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir });
    const [name] = await cacheFiles(dir);
    const file = path.join(dir, name!);
    await chmod(file, 0o666);
    const before = await readFile(file);
    expect((await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir })).cache).toBe('unsafe');
    expect((await readFile(file)).equals(before)).toBe(true);
    await chmod(file, 0o600);
    expect((await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir })).cache).toBe('accepted');
  });

  it('keeps one file per set of Node flags, and a rebuilt bundle never meets the code of another', async () => {
    const dir = path.join(tmp, 'cache');
    await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir });
    await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir, NODE_OPTIONS: '--max-semi-space-size=1' });
    expect(await cacheFiles(dir)).toHaveLength(2);
    expect((await apiary(['--version'], { APIARY_CODE_CACHE_DIR: dir, NODE_OPTIONS: '--max-semi-space-size=1' })).cache).toBe('accepted');
    // The same bundle file with a new mtime (a rebuild, an update in place) has a cache file of its own.
    const bundle = path.join(tmp, 'apiary.cjs');
    await writeFile(bundle, await readFile(BUILT_BUNDLE));
    await utimes(bundle, 1_700_000_000, 1_700_000_000);
    const before = codeCacheFile(dir, bundle, {});
    await utimes(bundle, 1_700_000_000, 1_700_000_001);
    expect(codeCacheFile(dir, bundle, {})).not.toBe(before);
    await utimes(bundle, 1_700_000_000, 1_700_000_000);
    expect(codeCacheFile(dir, bundle, {})).toBe(before);
    expect(codeCacheFile(dir, bundle, { NODE_OPTIONS: '--max-old-space-size=160' })).not.toBe(before);
  });

  it(`keeps at most ${MAX_FILES} cache files, the newest`, async () => {
    const dir = path.join(tmp, 'cache');
    await mkdir(dir);
    for (let i = 0; i < 6; i += 1) {
      const old = path.join(dir, `apiary-old${i}.v8cache`);
      await writeFile(old, 'x');
      await utimes(old, new Date(), new Date(Date.now() - (10 - i) * 60_000));
    }
    await writeFile(path.join(dir, 'notes.txt'), 'not ours');
    // Left by writers killed mid-write: an old one goes, one being written now stays.
    await writeFile(path.join(dir, 'apiary-old5.v8cache.123.tmp'), 'x');
    await utimes(path.join(dir, 'apiary-old5.v8cache.123.tmp'), new Date(), new Date(Date.now() - 5 * 60_000));
    await writeFile(path.join(dir, 'apiary-old5.v8cache.456.tmp'), 'x');
    const script = new vm.Script('(function () { return 1 + 1; })');
    writeCodeCache(script, path.join(dir, 'apiary-new.v8cache'));
    expect((await readdir(dir)).sort()).toEqual(['apiary-new.v8cache', 'apiary-old3.v8cache', 'apiary-old4.v8cache', 'apiary-old5.v8cache', 'apiary-old5.v8cache.456.tmp', 'notes.txt']);
  });

  it('finds its directory: the setting, then systemd, then the XDG cache, then ~/.cache', () => {
    expect(codeCacheDir({ APIARY_CODE_CACHE_DIR: '/x', CACHE_DIRECTORY: '/var/cache/apiary', HOME: '/home/b' })).toBe('/x');
    expect(codeCacheDir({ APIARY_CODE_CACHE_DIR: 'off', HOME: '/home/b' })).toBeUndefined();
    expect(codeCacheDir({ APIARY_CODE_CACHE_DIR: '', HOME: '/home/b' })).toBeUndefined();
    expect(codeCacheDir({ CACHE_DIRECTORY: '/var/cache/apiary:/var/cache/other', HOME: '/home/b' })).toBe('/var/cache/apiary');
    expect(codeCacheDir({ XDG_CACHE_HOME: '/home/b/.c', HOME: '/home/b' })).toBe('/home/b/.c/apiary');
    expect(codeCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/home/b' })).toBe('/home/b/.cache/apiary');
    expect(codeCacheDir({})).toBeUndefined();
  });
});
