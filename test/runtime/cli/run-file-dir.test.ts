/** The run-file folder on disk: who is found, what is stale, which folder is trusted (real files, real pids). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findRunningNode, removeRunFiles, runDirectory, runFilePath, runningNodes, writeRunFile, type RunInfo } from '../../../runtime/cli/run-file.js';

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('run files', () => {
  let root: string;
  let dir: string;
  const info = (name: string, pid = process.pid): RunInfo => ({
    nodeId: `${name}aaaaaaaaaaa`.slice(0, 12), url: 'mqtt://127.0.0.1:1883', port: 1883, dataDir: path.join(root, name), pid, topicPrefix: 'apiary', startedAt: '2026-01-01T00:00:00.000Z', version: '0.1.0',
  });
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'apiary-runfile-'));
    dir = path.join(root, 'run', 'apiary');
  });
  afterEach(async () => { await rm(root, { recursive: true, force: true }); });

  it('lives in $XDG_RUNTIME_DIR/apiary, else <tmp>/apiary-<uid>; one file per resolved data dir', () => {
    expect(runDirectory({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/apiary');
    expect(runDirectory({ XDG_RUNTIME_DIR: 'relative' })).toBe(path.join(os.tmpdir(), `apiary-${process.getuid?.() ?? os.userInfo().username}`));
    expect(runDirectory({})).toBe(path.join(os.tmpdir(), `apiary-${process.getuid?.() ?? os.userInfo().username}`));
    expect(runFilePath('data', dir)).toBe(runFilePath(path.resolve('data'), dir));
    expect(runFilePath('a', dir)).not.toBe(runFilePath('b', dir));
  });

  it('writes owner-only files, finds live nodes, removes stale and unreadable ones, and removes only its own on stop', async () => {
    const a = await writeRunFile(info('a'), dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(a)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path.join(dir, 'latest.json'), 'utf8'))).toEqual(info('a'));
    const stale = runFilePath(path.join(root, 'gone'), dir);
    await writeFile(stale, JSON.stringify(info('gone', await deadPid())));
    const garbage = runFilePath(path.join(root, 'garbage'), dir);
    await writeFile(garbage, '{"nodeId": 1');
    expect(runningNodes(dir)).toEqual([info('a')]);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(garbage)).toBe(false);

    // Only the process named in a file removes it.
    removeRunFiles(path.join(root, 'a'), process.pid + 1, dir);
    expect(existsSync(a)).toBe(true);
    removeRunFiles(path.join(root, 'a'), process.pid, dir);
    expect(existsSync(a)).toBe(false);
    expect(existsSync(path.join(dir, 'latest.json'))).toBe(false);
  });

  it('picks the data dir\'s node, else the only one; lists several; an explicit data dir never falls back to another node', async () => {
    await writeRunFile(info('a'), dir);
    expect(findRunningNode({ dataDir: path.join(root, 'other'), dataDirExplicit: false }, dir)?.nodeId).toBe(info('a').nodeId);
    expect(findRunningNode({ dataDir: path.join(root, 'other'), dataDirExplicit: true }, dir)).toBeUndefined();
    await writeRunFile(info('b'), dir);
    expect(findRunningNode({ dataDir: path.join(root, 'b'), dataDirExplicit: false }, dir)?.nodeId).toBe(info('b').nodeId);
    expect(findRunningNode({ dataDir: path.join(root, 'other'), dataDirExplicit: false, nodeId: info('a').nodeId }, dir)?.nodeId).toBe(info('a').nodeId);
    expect(() => findRunningNode({ dataDir: path.join(root, 'other'), dataDirExplicit: false }, dir)).toThrow(
      expect.objectContaining({ code: 'APIARY_NODE_AMBIGUOUS', message: expect.stringContaining(`--data-dir ${path.join(root, 'b')}`) as unknown }),
    );
  });

  it('trusts no folder others can write to: it writes nothing there and reads nothing from it', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(runFilePath(path.join(root, 'planted'), dir), JSON.stringify(info('planted')));
    await chmod(dir, 0o777);
    await expect(writeRunFile(info('a'), dir)).rejects.toThrow(/is writable by other users/);
    expect(runningNodes(dir)).toEqual([]);
    await chmod(dir, 0o755); // ours and not writable by others: tightened to 0700 on write
    await writeRunFile(info('a'), dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });
});
