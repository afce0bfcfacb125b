/**
 * The data dir before anything is written into it: created one level at a
 * time (never `mkdir -p`, which on Node 20 loops forever under /proc), made
 * owner-only (0700: it holds the private keys), and every way it can be
 * unusable (a file, no permission, read-only, a virtual filesystem, a full
 * disk) reported at once as DATA_DIR_INVALID with a `fix:` line.
 */
import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { fsyncDir } from './atomic-json-file.js';

export const DATA_DIR_MODE = 0o700;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** The user-facing error for a data dir that cannot be used, with a fix that fits the cause. */
export function dataDirError(dir: string, err: unknown, at: string = dir): ApiaryError {
  const code = errno(err);
  const other = 'or choose another folder with --data-dir (or node.dataDir in the config), e.g. ~/.apiary';
  const [why, fix] = ((): [string, string] => {
    switch (code) {
      case 'ENOTDIR':
      case 'EEXIST':
        return [`${at} is a file, not a folder`, `move the file aside, ${other}`];
      case 'EACCES':
      case 'EPERM':
        return [`permission denied on ${at}`, `run the node as the user that owns it (sudo chown -R "$USER" ${at}), ${other}`];
      case 'EROFS':
        return [`${at} is on a read-only filesystem`, `remount it read-write, ${other}`];
      case 'ENOSPC':
      case 'EDQUOT':
        return [`the disk holding ${at} is full`, `free some space, ${other}`];
      case 'ENOENT':
      case 'EINVAL':
      case 'ENOSYS':
        return [`${at} cannot be created there (a virtual filesystem such as /proc or /sys?)`, 'choose a folder on a real disk with --data-dir (or node.dataDir in the config), e.g. ~/.apiary'];
      default:
        return [err instanceof Error ? err.message : String(err), other];
    }
  })();
  return new ApiaryError(ErrorCodes.DATA_DIR_INVALID, `cannot use ${dir} as the data dir: ${why}`, { hint: fix, cause: err });
}

/**
 * Creates `dir` and its missing parents one level at a time: each level is
 * tried once, so an impossible path fails at once instead of looping.
 * Returns the highest folder it created (undefined if `dir` existed).
 */
export async function ensureDir(dir: string, mode = DATA_DIR_MODE): Promise<string | undefined> {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      const found = await stat(current);
      if (!found.isDirectory()) throw dataDirError(dir, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), current);
      break;
    } catch (err) {
      if (err instanceof ApiaryError) throw err;
      // ENOTDIR: a level above is a file; going up finds and names it.
      if (!['ENOENT', 'ENOTDIR'].includes(errno(err) ?? '') || path.dirname(current) === current) throw dataDirError(dir, err, current);
      missing.push(current);
    }
  }
  const toCreate = missing.reverse(); // outermost first
  for (const level of toCreate) {
    try {
      await mkdir(level, { mode });
    } catch (err) {
      if (errno(err) === 'EEXIST' && (await stat(level).catch(() => undefined))?.isDirectory()) continue;
      throw dataDirError(dir, err, level);
    }
  }
  const top = toCreate[0];
  if (top !== undefined) await fsyncDir(path.dirname(top)).catch((err: unknown) => { throw dataDirError(dir, err, path.dirname(top)); });
  return top;
}

/**
 * Makes the data dir usable: created if missing, owner-only (0700). Whether it
 * is writable shows when the lock file is created (see data-dir-lock.ts).
 */
export async function prepareDataDir(dir: string): Promise<{ created: string | undefined }> {
  const created = await ensureDir(dir);
  try {
    await chmod(dir, DATA_DIR_MODE);
  } catch (err) {
    throw dataDirError(dir, err);
  }
  return { created };
}
