/**
 * `apiary doctor`'s system section: free space on the data dir's filesystem,
 * whether the clock is plausible and synchronised (a Pi has no real-time
 * clock: without network time it starts at its last shutdown), and the state
 * of the `apiary` systemd service. External programs run through execFile,
 * without a shell and with a timeout; one that is missing or fails makes its
 * item "unknown", never a crash.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const COMMAND_TIMEOUT_MS = 5_000;
export const DISK_WARN_BYTES = 200 * 1024 * 1024;
export const DISK_WARN_FRACTION = 0.1;
export const SERVICE = 'apiary';

export interface Finding {
  readonly status: 'ok' | 'warn' | 'unknown';
  readonly detail: string;
  readonly hint?: string;
}

export interface SystemReport {
  readonly disk: Finding & { readonly path: string; readonly freeBytes?: number; readonly totalBytes?: number };
  readonly clock: Finding & { readonly now: string; readonly buildTime: string; readonly synchronized: boolean | null; readonly source: string };
  readonly service: Finding & { readonly active: string | null; readonly enabled: string | null };
}

type RunResult = { kind: 'done'; code: number; stdout: string; stderr: string } | { kind: 'missing' } | { kind: 'failed'; reason: string };

/** Runs `command` without a shell; a non-zero exit is still `done` (systemctl is-active answers through it). */
export function run(command: string, args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) { resolve({ kind: 'done', code: 0, stdout: stdout.trim(), stderr: stderr.trim() }); return; }
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
      if (e.code === 'ENOENT') resolve({ kind: 'missing' });
      else if (typeof e.code === 'number') resolve({ kind: 'done', code: e.code, stdout: stdout.trim(), stderr: stderr.trim() });
      else resolve({ kind: 'failed', reason: e.killed ? `timed out after ${COMMAND_TIMEOUT_MS / 1000} s` : e.message });
    });
  });
}

const mb = (bytes: number) => (bytes >= 10 * 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : `${(bytes / 1024 / 1024).toFixed(0)} MB`);
const firstLine = (text: string) => text.split('\n')[0] ?? '';

/** The verdict on free space; a pure function so the thresholds are testable without filling a disk. */
export function diskFinding(where: string, freeBytes: number, totalBytes: number): SystemReport['disk'] {
  const fraction = totalBytes > 0 ? freeBytes / totalBytes : 0;
  const detail = `${mb(freeBytes)} free of ${mb(totalBytes)} (${(fraction * 100).toFixed(0)} %) on the filesystem of ${where}`;
  const low = freeBytes < DISK_WARN_BYTES || fraction < DISK_WARN_FRACTION;
  return low
    ? { status: 'warn', detail, path: where, freeBytes, totalBytes, hint: `under ${mb(DISK_WARN_BYTES)} or ${DISK_WARN_FRACTION * 100} % free: the node's feeds and logs grow until writes fail; free space (\`sudo journalctl --vacuum-size=50M\`, old files) or use a bigger SD card` }
    : { status: 'ok', detail, path: where, freeBytes, totalBytes };
}

/** The data dir may not exist yet: the filesystem it would be created on. */
export async function diskReport(dataDir: string): Promise<SystemReport['disk']> {
  let where = path.resolve(dataDir);
  while (!existsSync(where) && path.dirname(where) !== where) where = path.dirname(where);
  try {
    const fs = await statfs(where);
    return diskFinding(where, fs.bavail * fs.bsize, fs.blocks * fs.bsize);
  } catch (err) {
    return { status: 'unknown', detail: `cannot read the free space of ${where}: ${(err as Error).message}`, path: where };
  }
}

/** No build is older than this; the floor still catches a clock at 1970 if a reproducible build reset the file times. */
const EARLIEST_BUILD = Date.parse('2026-11-01T00:00:00Z');

/** The build's time: when this file was written by the build (dpkg keeps file times). */
export async function buildTime(): Promise<Date> {
  const mtime = await stat(fileURLToPath(import.meta.url)).then((s) => s.mtimeMs, () => 0);
  return new Date(Math.max(mtime, EARLIEST_BUILD));
}

export function clockFinding(now: Date, built: Date, synchronized: boolean | null, source: string): SystemReport['clock'] {
  const base = { now: now.toISOString(), buildTime: built.toISOString(), synchronized, source };
  if (now.getTime() < built.getTime()) {
    return { ...base, status: 'warn', detail: `the clock says ${base.now}, before this build (${base.buildTime})`, hint: 'the board has no real-time clock and has not had network time: connect it to a network once (systemd-timesyncd sets the time), or add an RTC module; readings and signed entries carry these wrong times' };
  }
  if (synchronized === true) return { ...base, status: 'ok', detail: `${base.now}, synchronised (${source})` };
  if (synchronized === false) return { ...base, status: 'warn', detail: `${base.now}, not synchronised (${source})`, hint: 'no network time yet: at a hive without network this is expected, the clock runs on from the last sync; otherwise check `timedatectl timesync-status` and that systemd-timesyncd is enabled' };
  return { ...base, status: 'unknown', detail: `${base.now}, synchronisation unknown (${source})` };
}

/** timedatectl when it answers, else systemd-timesyncd's flag file under `root`, else unknown. */
export async function clockReport(root: string, now = new Date(), timedatectl = 'timedatectl'): Promise<SystemReport['clock']> {
  const built = await buildTime();
  const result = await run(timedatectl, ['show', '-p', 'NTPSynchronized', '--value']);
  if (result.kind === 'done' && result.code === 0 && (result.stdout === 'yes' || result.stdout === 'no')) {
    return clockFinding(now, built, result.stdout === 'yes', 'timedatectl');
  }
  if (existsSync(path.join(root, 'run/systemd/timesync/synchronized'))) return clockFinding(now, built, true, '/run/systemd/timesync/synchronized');
  const why = result.kind === 'missing' ? 'no timedatectl' : result.kind === 'failed' ? `timedatectl failed: ${result.reason}` : `timedatectl: ${firstLine(result.stderr || result.stdout) || `exit ${result.code}`}`;
  return clockFinding(now, built, null, `${why}, and no /run/systemd/timesync/synchronized`);
}

/** `systemctl`: the program (tests pass a fake's path). */
export async function serviceReport(systemctl = 'systemctl'): Promise<SystemReport['service']> {
  const enabled = await run(systemctl, ['is-enabled', SERVICE]);
  if (enabled.kind === 'missing') return { status: 'unknown', detail: 'not installed as a service (no systemctl)', active: null, enabled: null };
  if (enabled.kind === 'failed') return { status: 'unknown', detail: `systemctl failed: ${enabled.reason}`, active: null, enabled: null };
  const state = enabled.stdout.split('\n')[0] ?? '';
  if (state === 'not-found' || /no such file|not found|does not exist/i.test(enabled.stderr)) {
    return { status: 'unknown', detail: 'not installed as a service (no apiary.service)', active: null, enabled: null, hint: 'on a board, install the .deb (README, "Flashing a board"); from a git checkout, `npm start` runs it in the foreground' };
  }
  if (state === '') return { status: 'unknown', detail: `systemctl cannot tell: ${firstLine(enabled.stderr) || `exit ${enabled.code}`}`, active: null, enabled: null };
  const activeRun = await run(systemctl, ['is-active', SERVICE]);
  const active = activeRun.kind === 'done' ? (activeRun.stdout.split('\n')[0] ?? '') : '';
  const detail = `${SERVICE}.service: ${active || 'unknown'}, ${state}`;
  if (active === 'active' && state === 'enabled') return { status: 'ok', detail, active, enabled: state };
  const hint = active === 'failed' ? `it stopped: \`systemctl status ${SERVICE}\` and \`journalctl -u ${SERVICE} -e\` say why (a config error names the field); after a fix, \`sudo systemctl restart ${SERVICE}\``
    : active === 'active' ? `it will not start at boot: \`sudo systemctl enable ${SERVICE}\``
      : active === 'activating' || active === 'reloading' ? `starting: run the doctor again in a moment, or see \`journalctl -u ${SERVICE} -f\``
        : `it is not running: \`sudo systemctl enable --now ${SERVICE}\``;
  return { status: 'warn', detail, active: active || null, enabled: state, hint };
}

export async function systemReport(dataDir: string, root: string): Promise<SystemReport> {
  const [disk, clock, service] = await Promise.all([diskReport(dataDir), clockReport(root), serviceReport()]);
  return { disk, clock, service };
}

export function formatSystem(system: SystemReport): string[] {
  const lines = ['system'];
  for (const [name, f] of [['disk', system.disk], ['clock', system.clock], ['service', system.service]] as const) {
    lines.push(`  ${name.padEnd(8)} ${f.status === 'ok' ? '' : `${f.status.toUpperCase()}: `}${f.detail}`);
    if (f.hint) lines.push(`    fix: ${f.hint}`);
  }
  return lines;
}
