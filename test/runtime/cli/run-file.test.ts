/**
 * Node commands find a running node without repeating its flags: `apiary start`
 * leaves a run file, `apiary status` with no flags reads it. Real child
 * processes; XDG_RUNTIME_DIR points at a temp folder so tests never see each other's nodes.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFilePath } from '../../../runtime/cli/run-file.js';
import { apiary } from '../../support/cli.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

/** The pid of a process that has exited: a run file naming it is stale. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('finding a running node without its flags', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let runDir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-run-'));
    env = { XDG_RUNTIME_DIR: path.join(dir, 'run') };
    runDir = path.join(dir, 'run', 'apiary');
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const nodeIdOf = async (args: string[]) => {
    const reply = await apiary(['status', '--json', '--timeout', '3000', ...args], dir, env);
    return { ...reply, nodeId: reply.code === 0 ? (JSON.parse(reply.stdout) as { nodeId: string }).nodeId : undefined };
  };

  it('status with no flags asks the only running node; stale run files are ignored and removed; several nodes are listed', async () => {
    // Without any node the fix names every flag that finds one, --data-dir included.
    const none = await apiary(['status', '--timeout', '300', '--port', '1'], dir, env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('APIARY_NODE_NOT_RUNNING');
    expect(none.stderr).toMatch(/fix: .*--data-dir/);

    const nodes: NodeProcess[] = [];
    try {
      const a = await startNodeProcess(['--port', '0', '--data-dir', path.join(dir, 'a')], 20_000, env);
      nodes.push(a);
      const aId = (await a.waitFor(/Apiary node ([a-z2-7]{12}) is running/))[1] as string;
      // The run file: per data dir, private to this user, naming the node and its broker.
      const file = runFilePath(path.join(dir, 'a'), runDir);
      const info = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      expect(info).toMatchObject({ nodeId: aId, url: `mqtt://127.0.0.1:${a.port}`, port: a.port, dataDir: path.join(dir, 'a'), pid: a.child.pid, topicPrefix: 'apiary' });
      expect(typeof info.startedAt).toBe('string');
      expect(typeof info.version).toBe('string');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(runDir)).mode & 0o777).toBe(0o700);
      expect(JSON.parse(await readFile(path.join(runDir, 'latest.json'), 'utf8'))).toMatchObject({ nodeId: aId });

      // A stale run file (its process is gone) for the default data dir is ignored, then removed.
      const stale = runFilePath(path.join(dir, '.apiary'), runDir);
      await writeFile(stale, JSON.stringify({ ...info, nodeId: 'aaaaaaaaaaaa', pid: await deadPid(), port: 1, url: 'mqtt://127.0.0.1:1', dataDir: path.join(dir, '.apiary') }), { mode: 0o600 });
      const status = await nodeIdOf([]);
      expect(status.stderr).toContain(`asking node ${aId} of ${path.join(dir, 'a')}, the only node running here`);
      expect(status.nodeId).toBe(aId);
      expect(existsSync(stale)).toBe(false);
      // --data-dir alone finds a node started with --port 0 too.
      expect((await nodeIdOf(['--data-dir', 'a'])).nodeId).toBe(aId);

      const b = await startNodeProcess(['--port', '0', '--data-dir', path.join(dir, 'b')], 20_000, env);
      nodes.push(b);
      const bId = (await b.waitFor(/Apiary node ([a-z2-7]{12}) is running/))[1] as string;
      const several = await nodeIdOf([]);
      expect(several.code).toBe(1);
      expect(several.stderr).toContain('APIARY_NODE_AMBIGUOUS: 2 Apiary nodes are running here');
      expect(several.stderr).toContain(`node ${aId}  --data-dir ${path.join(dir, 'a')}`);
      expect(several.stderr).toContain(`node ${bId}  --data-dir ${path.join(dir, 'b')}`);
      expect(several.stderr).toMatch(/fix: pick one: add its --data-dir/);
      // The flags pick one; explicit flags win over the run files.
      expect((await nodeIdOf(['--data-dir', 'b'])).nodeId).toBe(bId);
      expect((await nodeIdOf(['--node', aId])).nodeId).toBe(aId);
      expect((await nodeIdOf(['--port', String(b.port), '--data-dir', 'b'])).nodeId).toBe(bId);

      // A clean stop removes the node's run file; the one left is found again.
      a.child.kill('SIGTERM');
      expect((await a.exited).code).toBe(0);
      expect(existsSync(file)).toBe(false);
      expect(await readdir(runDir)).toEqual(expect.arrayContaining([path.basename(runFilePath(path.join(dir, 'b'), runDir))]));
      expect((await nodeIdOf([])).nodeId).toBe(bId);
    } finally {
      for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGTERM');
      await Promise.all(nodes.map((n) => n.exited));
    }
  }, 120_000);
});
