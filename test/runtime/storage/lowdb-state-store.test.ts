import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { AtomicJsonFile, writeFileAtomic } from '../../../runtime/storage/atomic-json-file.js';
import { LowdbStateStore } from '../../../runtime/storage/lowdb-state-store.js';

interface State {
  boots: number;
  rules: { id: string; muted: boolean }[];
}
const defaults = (): State => ({ boots: 0, rules: [{ id: 'swarming', muted: false }] });

let dir: string;
let file: string;
let stores: LowdbStateStore<State>[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-state-'));
  file = path.join(dir, 'state', 'state.json');
  stores = [];
});

afterEach(async () => {
  for (const store of stores) await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<LowdbStateStore<State>> {
  const store = new LowdbStateStore<State>({ file, defaults: defaults() });
  stores.push(store);
  await store.open();
  return store;
}

describe('LowdbStateStore', () => {
  it('starts from the defaults when the file is missing, without writing it', async () => {
    const store = await openStore();
    expect(store.get()).toEqual(defaults());
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('persists updates across a reopen', async () => {
    const store = await openStore();
    await store.update((s) => {
      s.boots += 1;
      s.rules.push({ id: 'queenless', muted: true });
    });
    await store.update((s) => {
      s.boots += 1;
    });
    await store.close();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ boots: 2, rules: [{ id: 'swarming', muted: false }, { id: 'queenless', muted: true }] });
    const again = await openStore();
    expect(again.get().boots).toBe(2);
    expect(again.get().rules.map((r) => r.id)).toEqual(['swarming', 'queenless']);
  });

  it('hands out a deep-frozen copy that updates cannot reach into', async () => {
    const store = await openStore();
    const before = store.get();
    expect(Object.isFrozen(before)).toBe(true);
    expect(Object.isFrozen(before.rules[0])).toBe(true);
    expect(() => {
      (before.rules as State['rules']).push({ id: 'x', muted: false });
    }).toThrow(TypeError);
    let kept: State | undefined;
    await store.update((s) => {
      s.boots = 7;
      kept = s;
    });
    kept!.boots = 99; // a leaked draft must not change the committed state
    expect(before.boots).toBe(0);
    expect(store.get().boots).toBe(7);
  });

  it('serialises concurrent updates', async () => {
    const store = await openStore();
    await Promise.all(Array.from({ length: 20 }, () => store.update((s) => void (s.boots += 1))));
    expect(store.get().boots).toBe(20);
    await store.close();
    expect((await openStore()).get().boots).toBe(20);
  });

  it('leaves the state unchanged when the change throws', async () => {
    const store = await openStore();
    await expect(
      store.update((s) => {
        s.boots = 5;
        throw new Error('nope');
      }),
    ).rejects.toThrow('nope');
    expect(store.get().boots).toBe(0);
    await store.update((s) => void (s.boots += 1));
    expect(store.get().boots).toBe(1);
  });

  it('ignores and removes a temp file left by a crashed write', async () => {
    const store = await openStore();
    await store.update((s) => void (s.boots = 3));
    await store.close();
    const stale = `${file}.tmp-424242`;
    await writeFile(stale, '{"boots": 1000, "rul');
    const again = await openStore();
    expect(again.get().boots).toBe(3);
    expect(await readdir(path.dirname(file))).toEqual(['state.json']);
  });

  it('refuses a damaged file with STORAGE_CORRUPT naming the file, instead of resetting', async () => {
    await openStore();
    await writeFile(file, '{"boots": 4, "rules": [');
    const store = new LowdbStateStore<State>({ file, defaults: defaults() });
    const err: unknown = await store.open().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.STORAGE_CORRUPT });
    expect((err as Error).message).toContain(file);
    expect((err as { hint?: string }).hint).toMatch(/backup/);
    expect(await readFile(file, 'utf8')).toBe('{"boots": 4, "rules": [');
    await writeFile(file, 'null');
    await expect(store.open()).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CORRUPT });
  });

  it('writes the file with mode 0600', async () => {
    const store = await openStore();
    await store.update((s) => void (s.boots = 1));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('fails with STORAGE_CLOSED after close', async () => {
    const store = await openStore();
    await store.close();
    await expect(store.update((s) => void (s.boots = 1))).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CLOSED });
    expect(() => store.get()).toThrow(expect.objectContaining({ code: ErrorCodes.STORAGE_CLOSED }));
  });
});

describe('AtomicJsonFile', () => {
  it('returns null for a missing file and honours a custom mode', async () => {
    const adapter = new AtomicJsonFile<{ a: number }>(path.join(dir, 'doc.json'), { mode: 0o640 });
    expect(await adapter.read()).toBeNull();
    await adapter.write({ a: 1 });
    expect(await adapter.read()).toEqual({ a: 1 });
    expect((await stat(path.join(dir, 'doc.json'))).mode & 0o777).toBe(0o640);
  });

  it('writeFileAtomic replaces the content and leaves no temp file', async () => {
    const target = path.join(dir, 'identity.json');
    await writeFileAtomic(target, 'one');
    await writeFileAtomic(target, 'two', { mode: 0o600 });
    expect(await readFile(target, 'utf8')).toBe('two');
    expect(await readdir(dir)).toEqual(['identity.json']);
  });

  it('writeFileAtomic never writes through a link planted at a temp path (finding 14)', async () => {
    // A local process that can write in the folder plants links where the old code put its temp file.
    const elsewhere = path.join(dir, 'elsewhere.txt');
    await writeFile(elsewhere, 'precious');
    const target = path.join(dir, 'state.json');
    await writeFileAtomic(target, '{"v":0}');
    for (const suffix of [`.tmp-${process.pid}`, '.tmp', '.tmp-0']) await symlink(elsewhere, target + suffix);
    await writeFileAtomic(target, '{"v":1}');
    expect(await readFile(elsewhere, 'utf8')).toBe('precious');
    expect((await lstat(target)).isSymbolicLink()).toBe(false);
    expect(await readFile(target, 'utf8')).toBe('{"v":1}');
    // The temp name is not guessable from the pid, and each write uses a fresh one.
    const adapter = new AtomicJsonFile<{ v: number }>(target);
    await adapter.write({ v: 2 });
    expect(await readFile(elsewhere, 'utf8')).toBe('precious');
    expect(await adapter.read()).toEqual({ v: 2 });
  });
});
