/**
 * Crash-safe small files, and a lowdb adapter built on them.
 *
 * lowdb's own JSONFile writes through a temp file and rename, but never
 * fsyncs: after a power cut on an SD card the renamed file can be empty or
 * old. Here every write is temp file -> fsync -> rename -> fsync directory,
 * so the target always holds either the old or the new content, durably.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { ApiaryError, ErrorCodes } from '../errors.js';

export const DEFAULT_FILE_MODE = 0o600;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(what: string, err: unknown): ApiaryError {
  return new ApiaryError(ErrorCodes.STORAGE_IO, `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    hint: 'check that the data directory exists, is writable and the SD card is not full',
    cause: err,
  });
}

/**
 * Makes a directory's entries (a created, renamed or deleted file) durable.
 * Some platforms cannot fsync a directory; there it is skipped, on Linux an
 * error is real and propagates.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (process.platform === 'win32' || errno(err) === 'EISDIR' || errno(err) === 'EINVAL') return;
    throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * The temp name for a target: random, so no one can plant a link at it in
 * advance (the old `<file>.tmp-<pid>` was predictable), and never shared by two writers.
 */
function tempPath(file: string): string {
  return `${file}.tmp-${randomBytes(8).toString('hex')}`;
}

/**
 * Create-only, never through a link: O_EXCL fails on any existing name, a
 * symbolic link included (POSIX open(2)); O_NOFOLLOW says so again where the
 * platform has it.
 */
const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** Writes `data` to `file` atomically and durably (temp, fsync, rename, fsync dir). */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? DEFAULT_FILE_MODE;
  const tmp = tempPath(file);
  try {
    const fh = await open(tmp, CREATE_EXCLUSIVE, mode);
    try {
      await fh.chmod(mode); // exact, whatever the umask
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncDir(path.dirname(file));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(`could not write ${file}`, err);
  }
}

/** Deletes temp files a crashed writer left beside `file`; they never hold committed data. */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    throw ioError(`could not list ${dir}`, err);
  }
  for (const name of names) {
    // Digits: the old per-pid names; 16 hex digits: the random ones.
    if (name.startsWith(prefix) && /^(\d+|[0-9a-f]{16})$/.test(name.slice(prefix.length))) {
      await unlink(path.join(dir, name)).catch(() => undefined);
    }
  }
}

export interface AtomicJsonFileOptions {
  /** File mode of the written file (default 0o600: state may hold secrets). */
  readonly mode?: number;
  /** JSON indentation; 2 keeps the file readable over ssh. */
  readonly space?: number;
}

/** lowdb adapter: JSON on disk, atomic durable writes, loud on corruption. */
export class AtomicJsonFile<T> implements Adapter<T> {
  readonly file: string;
  private readonly mode: number;
  private readonly space: number;

  constructor(file: string, options: AtomicJsonFileOptions = {}) {
    this.file = file;
    this.mode = options.mode ?? DEFAULT_FILE_MODE;
    this.space = options.space ?? 2;
  }

  /** The document, or null when the file does not exist yet. */
  async read(): Promise<T | null> {
    await removeStaleTemps(this.file);
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return null;
      throw ioError(`could not read ${this.file}`, err);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw this.corrupt(`is not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
    }
    // lowdb only ever writes objects or arrays, and Low.read() treats a falsy
    // document as "missing" and would silently fall back to defaults.
    if (typeof parsed !== 'object' || parsed === null) {
      throw this.corrupt(`holds ${parsed === null ? 'null' : typeof parsed}, not a JSON object`);
    }
    return parsed as T;
  }

  async write(data: T): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, this.space)}\n`, { mode: this.mode });
  }

  private corrupt(why: string, cause?: unknown): ApiaryError {
    return new ApiaryError(ErrorCodes.STORAGE_CORRUPT, `state file ${this.file} ${why}`, {
      hint: 'restore the file from a backup, or move it aside to start from defaults; the node does not reset state on its own',
      cause,
    });
  }
}
