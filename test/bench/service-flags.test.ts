/**
 * The node flags the bench takes from packaging/apiary.service (service-flags.ts):
 * read as systemd would, and accepted by Node.js in NODE_OPTIONS, where the
 * service puts them (Node refuses many V8 flags there, and would not start).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { nodeOptionsOf, SERVICE_UNIT, serviceNodeFlags } from './service-flags.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Exit code of `node -e 0` with `flags` in NODE_OPTIONS, as the service starts it. */
async function nodeExit(flags: readonly string[]): Promise<number> {
  try {
    await run(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: flags.join(' ') } });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

describe('the service unit\'s node flags', () => {
  it('reads every NODE_OPTIONS line, quoted or not, and nothing else', () => {
    const unit = '[Service]\nEnvironment=NODE_ENV=production\nEnvironment=NODE_OPTIONS=--max-old-space-size=160  --max-semi-space-size=1\nEnvironment="NODE_OPTIONS=--stack-trace-limit=20"\n#Environment=NODE_OPTIONS=--jitless\n';
    expect(nodeOptionsOf(unit)).toEqual(['--max-old-space-size=160', '--max-semi-space-size=1', '--stack-trace-limit=20']);
    expect(nodeOptionsOf('[Service]\nExecStart=/usr/bin/apiary start\n')).toEqual([]);
  });

  it('takes the shipped unit\'s flags, which Node.js accepts in NODE_OPTIONS', async () => {
    const flags = await serviceNodeFlags(root, {});
    expect(flags).toContain('--max-old-space-size=160');
    expect(flags).toContain('--max-semi-space-size=1');
    expect(await nodeExit(flags)).toBe(0);
  });

  it('the check can fail: a V8 flag Node.js refuses in NODE_OPTIONS stops it from starting', async () => {
    expect(await nodeExit(['--optimize-for-size'])).not.toBe(0);
  });

  it('runs plain node with APIARY_BENCH_SERVICE_FLAGS=0, and with none for a checkout without the unit', async () => {
    expect(await serviceNodeFlags(root, { APIARY_BENCH_SERVICE_FLAGS: '0' })).toEqual([]);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-flags-'));
    try {
      expect(await serviceNodeFlags(dir, {})).toEqual([]);
      await mkdir(path.join(dir, 'packaging'));
      await writeFile(path.join(dir, SERVICE_UNIT), '[Service]\nEnvironment=NODE_OPTIONS=--max-old-space-size=96\n');
      expect(await serviceNodeFlags(dir, {})).toEqual(['--max-old-space-size=96']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
