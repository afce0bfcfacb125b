/**
 * One node per data dir. Two nodes on one dir would both append to the same
 * logs, and each would "recover" (truncate) what the other is writing.
 *
 * The lock is a file `node.lock` holding who holds it: pid, the process start
 * time (from /proc/<pid>/stat, so a reused pid is told apart), host name and a
 * random nonce. It is written complete to a temp file and hard-linked into
 * place (link(2) fails atomically with EEXIST), so no one ever reads a
 * half-written lock. No native addon, no flock: a lock of a process that died
 * (kill -9, power cut) is recognised and taken over.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { dataDirError } from './data-dir.js';

export const LOCK_FILE = 'node.lock';
/** A lock file that does not parse (written without link(2)) is taken for "being written" this long. */
const UNREADABLE_GRACE_MS = 5_000;
const ATTEMPTS = 50;
/** A take-over mutex older than this was left by a starter that died in the middle: removed. */
const TAKEOVER_STALE_MS = 10_000;

export interface LockHolder {
  readonly version: 1;
  readonly pid: number;
  /** Clock ticks since boot when the process started (/proc/<pid>/stat field 22); null off Linux. */
  readonly startTime: string | null;
  readonly hostname: string;
  readonly startedAt: string;
  readonly nonce: string;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
export function processStartTime(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process that wrote `holder` still runs (unknowable on another host: assumed yes). */
export function holderAlive(holder: LockHolder): boolean {
  if (holder.hostname !== os.hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if (errno(err) === 'ESRCH') return false;
    // EPERM: it exists, owned by someone else.
  }
  const now = processStartTime(holder.pid);
  return holder.startTime === null || now === null || now === holder.startTime;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    // pid > 0: kill(0 or negative) would address a process group, not the holder.
    if (value.version === 1 && Number.isSafeInteger(value.pid) && (value.pid ?? 0) > 0 && typeof value.nonce === 'string' && typeof value.hostname === 'string') return value as LockHolder;
  } catch {
    // falls through: unreadable
  }
  return undefined;
}

export class DataDirLock {
  private released = false;

  private constructor(readonly file: string, readonly holder: LockHolder) {}

  /**
   * Takes the lock of `dataDir` (which must exist), or throws DATA_DIR_LOCKED
   * naming the live process that holds it. `onStale` hears of a dead holder's lock taken over.
   */
  static async acquire(dataDir: string, onStale?: (stale: LockHolder | undefined) => void): Promise<DataDirLock> {
    const file = path.join(dataDir, LOCK_FILE);
    const holder: LockHolder = {
      version: 1, pid: process.pid, startTime: processStartTime(process.pid), hostname: os.hostname(),
      startedAt: new Date().toISOString(), nonce: randomBytes(16).toString('hex'),
    };
    const text = `${JSON.stringify(holder)}\n`;
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      try {
        // Not fsynced: a power cut that loses the lock also ended the process holding it.
        if (await placeLock(file, text)) return new DataDirLock(file, holder);
      } catch (err) {
        throw dataDirError(dataDir, err);
      }
      const current = await readFile(file, 'utf8').catch((err: unknown) => {
        if (errno(err) === 'ENOENT') return undefined; // released meanwhile: try again
        throw dataDirError(dataDir, err, file);
      });
      if (current === undefined) continue;
      const other = parseHolder(current);
      if (other ? holderAlive(other) : await youngerThan(file, UNREADABLE_GRACE_MS)) throw lockedError(dataDir, other);
      const taken = await takeOverStale(file, current, text).catch((err: unknown) => {
        throw dataDirError(dataDir, err, file);
      });
      if (taken === 'taken') {
        onStale?.(other);
        return new DataDirLock(file, holder);
      }
      // 'busy': another starter is taking it over; 'changed': the lock is no longer the stale one. Look again.
      if (taken === 'busy') await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
    }
    throw lockedError(dataDir, undefined);
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const current = await readFile(this.file, 'utf8').catch(() => undefined);
    if (current !== undefined && parseHolder(current)?.nonce === this.holder.nonce) await unlink(this.file).catch(() => undefined);
  }
}

/** Writes the lock complete, then links it into place; false if a lock is already there. */
async function placeLock(file: string, text: string): Promise<boolean> {
  const temp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
  const fh = await open(temp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    // Filesystems without hard links (FAT, exFAT): O_EXCL create of the lock itself.
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(errno(err) ?? '')) throw err;
    return writeExclusive(file, text);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function writeExclusive(file: string, text: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
  return true;
}

async function youngerThan(file: string, ms: number): Promise<boolean> {
  const found = await stat(file).catch(() => undefined);
  return found !== undefined && Date.now() - found.mtimeMs < ms;
}

/**
 * Replaces a dead holder's lock with ours. Starters that all saw the same
 * stale lock serialise on a take-over mutex (`node.lock.takeover`, created
 * exclusively): the one holding it checks the lock is still the stale one,
 * removes it and places its own, all before letting go. The others then find
 * a live holder. So however many race, exactly one takes the dir.
 */
async function takeOverStale(file: string, staleText: string, ourText: string): Promise<'taken' | 'changed' | 'busy'> {
  const mutex = `${file}.takeover`;
  let fh;
  try {
    fh = await open(mutex, 'wx', 0o600);
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw err;
    // Left by a starter that died while holding it: removed, and the next attempt goes on.
    if (!(await youngerThan(mutex, TAKEOVER_STALE_MS))) await unlink(mutex).catch(() => undefined);
    return 'busy';
  }
  try {
    await fh.close();
    const current = await readFile(file, 'utf8').catch((err: unknown) => {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (current !== staleText) return 'changed';
    await unlink(file);
    return (await placeLock(file, ourText)) ? 'taken' : 'changed';
  } finally {
    await unlink(mutex).catch(() => undefined);
  }
}

function lockedError(dataDir: string, holder: LockHolder | undefined): ApiaryError {
  const who = holder
    ? `process ${holder.pid}${holder.hostname !== os.hostname() ? ` on host ${holder.hostname}` : ''}, started ${holder.startedAt}`
    : 'another process (its lock file is being written)';
  return new ApiaryError(ErrorCodes.DATA_DIR_LOCKED, `the data dir ${dataDir} is in use by another Apiary node: ${who}`, {
    hint: holder
      ? `stop that node first (kill ${holder.pid}), or give this one its own --data-dir; two nodes on one data dir would corrupt each other's logs`
      : `try again in a moment; if no node runs, delete ${path.join(dataDir, LOCK_FILE)}`,
  });
}
