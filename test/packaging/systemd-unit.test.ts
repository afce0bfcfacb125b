/**
 * packaging/apiary.service: what the node relies on (notify, watchdog,
 * restarts, memory), and its hardening as systemd itself scores it
 * (`systemd-analyze security --offline=true`, no running systemd needed).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNIT = path.join(root, 'packaging', 'apiary.service');

/** Which `systemd-analyze` runs here, or why none does. */
async function analyzer(): Promise<string | { missing: string }> {
  try {
    await run('systemd-analyze', ['--version']);
    return 'systemd-analyze';
  } catch {
    return { missing: 'systemd-analyze is not installed (Debian package `systemd`; .ci/run installs it)' };
  }
}
const found = await analyzer();
if (typeof found !== 'string') console.warn(`skipping the unit's security score: ${found.missing}`);

async function exposure(unitFile: string): Promise<number> {
  // The score is printed on the last line whatever it is; a high one also makes the command exit non-zero.
  const output = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unitFile]).then((r) => r.stdout, (err: { stdout?: string }) => err.stdout ?? '');
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(output);
  if (!match) throw new Error(`no exposure level in:\n${output}`);
  return Number(match[1]);
}

/** Every value of `key` in the unit (later lines add to or replace earlier ones, as systemd reads them). */
function values(key: string): string[] {
  return readFileSync(UNIT, 'utf8').split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

describe('apiary.service', () => {
  it('is a notify service with a watchdog, restarts on failure but not on a bad config, and fits a 512 MB board', () => {
    expect(values('Type')).toEqual(['notify']);
    expect(values('NotifyAccess')).toEqual(['all']); // the notifier is a child process (systemd-notify)
    expect(values('ExecStart')).toEqual(['/usr/bin/apiary start']);
    expect(values('WatchdogSec')).toEqual(['30s']);
    expect(values('Restart')).toEqual(['on-failure']);
    expect(values('RestartPreventExitStatus')).toEqual(['78']);
    expect(values('User')).toEqual(['apiary']);
    expect(values('ReadWritePaths')).toEqual(['/var/lib/apiary']);
    expect(values('CacheDirectory')).toEqual(['apiary']); // the code cache (runtime/cli/code-cache.ts), in $CACHE_DIRECTORY
    expect(values('MemoryMax')).toEqual(['340M']); // node + its Node-RED child, below the ~360 MB a Pi Zero 2 W leaves
    expect(values('MemoryHigh')).toEqual(['280M']);
    expect(values('CapabilityBoundingSet')).toEqual(['']);
  });

  it.skipIf(typeof found !== 'string')('scores an exposure of 2.0 or less in systemd-analyze security', async () => {
    expect(await exposure(UNIT)).toBeLessThanOrEqual(2.0);
  });

  it.skipIf(typeof found !== 'string')('the score can fail: the same service without its hardening scores far above 2.0', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-unit-'));
    try {
      const bare = path.join(dir, 'apiary.service');
      await writeFile(bare, '[Service]\nType=notify\nExecStart=/usr/bin/apiary start\n');
      expect(await exposure(bare)).toBeGreaterThan(5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
