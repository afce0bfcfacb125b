/**
 * scripts/patch-aedes.mjs, the `postinstall` step that applies
 * patches/aedes-1.2.0.patch: run for real on copies of the installed
 * packages in a temp dir (PATCH_AEDES_ROOT), never on node_modules itself.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = path.join(repo, 'scripts', 'patch-aedes.mjs');
const FILES = ['aedes/aedes.js', 'aedes-persistence/asyncPersistence.js', 'mqemitter/mqemitter.js'];
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A package root holding the patch and copies of the installed (patched) files with their package.json. */
function fakeRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'apiary-patch-aedes-'));
  dirs.push(root);
  cpSync(path.join(repo, 'patches'), path.join(root, 'patches'), { recursive: true });
  for (const file of FILES) {
    const name = file.split('/')[0] as string;
    mkdirSync(path.join(root, 'node_modules', name), { recursive: true });
    cpSync(path.join(repo, 'node_modules', name, 'package.json'), path.join(root, 'node_modules', name, 'package.json'));
    cpSync(path.join(repo, 'node_modules', file), path.join(root, 'node_modules', file));
  }
  return root;
}

function run(root: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { ...process.env, PATCH_AEDES_ROOT: root } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const read = (root: string): string[] => FILES.map((f) => readFileSync(path.join(root, 'node_modules', f), 'utf8'));

/** The retained store of aedes's in-memory persistence, as installed (patched), used directly. */
interface RetainedStore {
  storeRetained(packet: { topic: string; payload: Buffer; qos: number; retain: boolean }): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): Readable;
}
const MemoryPersistence = createRequire(path.join(repo, 'node_modules', 'aedes', 'aedes.js'))('aedes-persistence/asyncPersistence.js') as new () => RetainedStore;

async function topicsOf(stream: Readable): Promise<string[]> {
  const found: string[] = [];
  for await (const packet of stream) found.push(`${(packet as { topic: string }).topic}=${(packet as { payload: Buffer }).payload.toString()}`);
  return found;
}

describe('the installed aedes persistence, patched', () => {
  it('matches + against an empty level, takes 1000 levels, and looks retained messages up as they are when asked', async () => {
    const store = new MemoryPersistence();
    const deep = Array.from({ length: 1000 }, (_, i) => `l${i}`).join('/');
    for (const topic of ['a//b', 'a/x/b', deep]) await store.storeRetained({ topic, payload: Buffer.from('old'), qos: 0, retain: true });
    expect(await topicsOf(store.createRetainedStreamCombi(['a/+/b']))).toEqual(['a//b=old', 'a/x/b=old']);
    expect(await topicsOf(store.createRetainedStreamCombi([deep.replace('/l500/', '/+/')]))).toEqual([`${deep}=old`]);
    const stream = store.createRetainedStreamCombi(['a/+/b']);
    await store.storeRetained({ topic: 'a/x/b', payload: Buffer.from('new'), qos: 0, retain: true }); // after the lookup: reaches subscribers live
    expect(await topicsOf(stream)).toEqual(['a//b=old', 'a/x/b=old']);
  });
});

describe('patch-aedes (postinstall)', () => {
  it('applies the patch once, is idempotent, and can be reversed', async () => {
    const root = fakeRoot();
    const installed = read(root);
    expect(installed.every((text) => text.includes('apiary patch'))).toBe(true); // node_modules is patched (npm ci ran it)
    expect((await run(root, '--reverse')).stdout).toContain('restored 3 file(s)');
    const original = read(root);
    expect(original.some((text) => text.includes('apiary patch'))).toBe(false);
    expect((await run(root)).stdout).toContain('patched 3 file(s)');
    expect(read(root)).toEqual(installed);
    const again = await run(root);
    expect([again.code, again.stdout]).toEqual([0, expect.stringContaining('already patched')]);
    expect(read(root)).toEqual(installed);
  });

  it('fails loudly on another aedes version or a file the patch does not fit', async () => {
    const root = fakeRoot();
    const manifest = path.join(root, 'node_modules', 'aedes', 'package.json');
    const pristine = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, pristine.replace('"version": "1.2.0"', '"version": "1.3.0"'));
    const wrongVersion = await run(root);
    expect(wrongVersion.code).toBe(1);
    expect(wrongVersion.stderr).toMatch(/aedes 1\.3\.0 is installed; the patch is for aedes 1\.2\.0[\s\S]*fix:/);
    writeFileSync(manifest, pristine);
    await run(root, '--reverse');
    const emitter = path.join(root, 'node_modules', 'mqemitter', 'mqemitter.js');
    writeFileSync(emitter, readFileSync(emitter, 'utf8').replace('wildcard_some: opts.wildcardSome', 'wildcard_some: opts.somethingElse'));
    const misfit = await run(root);
    expect(misfit.code).toBe(1);
    expect(misfit.stderr).toContain('does not apply');
  });
});
