/**
 * Runs the CLI bundle (dist/apiary.cjs) from V8's code cache (issue 16: cold
 * start at most 5x `node -e 0`). Most of a start is V8 parsing and compiling
 * some 2.5 MB of JavaScript for the first time; V8 can save the code it
 * compiled (`vm.Script#createCachedData`) and take it back in a later process
 * instead of compiling again, which Node 22 does for its own modules
 * (`module.enableCompileCache`) but Node 20 does not for any. So the bundle
 * is CommonJS, compiled here with `vm.Script` like Node's own CommonJS loader
 * does, with the cached data of an earlier start when there is one.
 *
 * The cache is an optimisation, never a source of truth:
 * - V8 checks the data against its own version, its flags and the source's
 *   length, and rejects what does not fit (`cachedDataRejected`); the file
 *   is then written again. The file's name also carries the bundle's size,
 *   mtime and inode, and the Node version, arch and flags, so a rebuilt or
 *   updated bundle never meets the code of another.
 * - Any error reading or writing the cache leaves the bundle compiled from
 *   source; the node starts either way.
 * - Cached data is code this process will run: it is read only from a
 *   directory and a file this user owns and no one else can write
 *   (`unsafe` otherwise: compiled from source, nothing written).
 * - It is written once per bundle and set of flags, atomically (temporary
 *   file, then rename), a few seconds after start so it holds the functions
 *   the start compiled; at most MAX_FILES are kept.
 *
 * Where: APIARY_CODE_CACHE_DIR (`off` for none); else systemd's
 * CACHE_DIRECTORY (the unit's CacheDirectory=apiary, /var/cache/apiary);
 * else $XDG_CACHE_HOME/apiary or ~/.cache/apiary.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

/** What became of the cache at this start (APIARY_DEBUG prints it). */
export type CodeCacheState = 'accepted' | 'rejected' | 'missing' | 'off' | 'unsafe';

/** Cache files kept per directory: a few builds and flag sets (the service's, the CLI's). */
export const MAX_FILES = 4;
const PREFIX = 'apiary-';
const SUFFIX = '.v8cache';
/** Long enough for a start to have compiled what it runs at every start (the first reading comes at about 0.4 s). */
const WRITE_AFTER_MS = 5_000;

/** The bundle's CommonJS wrapper, as Node's loader has it, plus the one dynamic `import()` the bundle may call. */
type BundleFunction = (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string, importModule: (specifier: string) => Promise<unknown>) => void;
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname, __apiaryImport) {';
const WRAPPER_TAIL = '\n})';

/** The cache directory for this environment, or undefined for none. */
export function codeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const set = env.APIARY_CODE_CACHE_DIR;
  if (set !== undefined) return set === '' || set === 'off' ? undefined : path.resolve(set);
  // systemd sets CACHE_DIRECTORY for CacheDirectory= (a colon-separated list when there are several).
  const systemd = env.CACHE_DIRECTORY?.split(':')[0];
  if (systemd !== undefined && path.isAbsolute(systemd)) return systemd;
  if (env.XDG_CACHE_HOME !== undefined && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 'apiary');
  if (env.HOME !== undefined && path.isAbsolute(env.HOME)) return path.join(env.HOME, '.cache', 'apiary');
  return undefined;
}

/** The cache file for this bundle file, this Node and these flags. */
export function codeCacheFile(dir: string, bundleFile: string, env: NodeJS.ProcessEnv = process.env): string {
  const s = statSync(bundleFile, { bigint: true });
  const key = [process.version, process.arch, process.execArgv.join(' '), env.NODE_OPTIONS ?? '', bundleFile, s.size, s.mtimeNs, s.ino].join('\0');
  return path.join(dir, `${PREFIX}${createHash('sha256').update(key).digest('hex').slice(0, 24)}${SUFFIX}`);
}

/** Only this user can change it: cached data another user could write is code that user could run as us. */
function ownedAndPrivate(st: Stats): boolean {
  const uid = process.getuid?.();
  return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
}

/** The cache file's bytes; undefined if there is none yet (or it cannot be read); 'unsafe' if others could have written it. */
function readCache(file: string): Buffer | 'unsafe' | undefined {
  try {
    if (!ownedAndPrivate(statSync(path.dirname(file)))) return 'unsafe';
  } catch {
    return undefined; // no directory yet: made 0700 at the first write
  }
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined; // none yet: compiled from source, written later
  }
  try {
    if (!ownedAndPrivate(fstatSync(fd))) return 'unsafe';
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the code V8 has compiled by now, atomically, and keeps the newest MAX_FILES cache files. */
export function writeCodeCache(script: vm.Script, file: string): void {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const data = script.createCachedData();
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    pruneCodeCache(dir, file);
  } catch {
    // A read-only or full disk, a file where the directory should be: the next start compiles from source again.
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing was written
    }
  }
}

function pruneCodeCache(dir: string, keep: string): void {
  const names = readdirSync(dir).filter((name) => name.startsWith(PREFIX));
  // Temporary files of writers killed mid-write (a minute is far longer than any write takes).
  for (const name of names.filter((n) => n.endsWith('.tmp'))) {
    const tmp = path.join(dir, name);
    if (Date.now() - statSync(tmp).mtimeMs > 60_000) rmSync(tmp, { force: true });
  }
  const files = names.filter((name) => name.endsWith(SUFFIX)).map((name) => path.join(dir, name));
  const byAge = files.filter((f) => f !== keep).map((f) => ({ f, at: statSync(f).mtimeMs })).sort((a, b) => b.at - a.at);
  for (const { f } of byAge.slice(MAX_FILES - 1)) rmSync(f, { force: true });
}

/**
 * Compiles and runs the bundle, from the code cache when it fits.
 * `importModule` is the ES module `import()` of the caller: code compiled
 * from cached data loses vm's dynamic-import hook on Node 20, so the bundle
 * calls this function instead of `import()` (runtime/cli/bundle.ts rewrites them).
 */
export function runBundle(bundleFile: string, importModule: (specifier: string) => Promise<unknown>, env: NodeJS.ProcessEnv = process.env): void {
  const source = readFileSync(bundleFile, 'utf8');
  const dir = codeCacheDir(env);
  let file: string | undefined;
  try {
    file = dir === undefined ? undefined : codeCacheFile(dir, bundleFile, env);
  } catch {
    file = undefined;
  }
  const read = file === undefined ? undefined : readCache(file);
  const cachedData = read instanceof Buffer ? read : undefined;
  const script = new vm.Script(WRAPPER_HEAD + source + WRAPPER_TAIL, { filename: bundleFile, cachedData });
  const state: CodeCacheState = file === undefined ? 'off' : read === 'unsafe' ? 'unsafe' : cachedData === undefined ? 'missing' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  if (file !== undefined && (state === 'missing' || state === 'rejected')) {
    const target = file;
    let written = false;
    const write = () => {
      if (written) return;
      written = true;
      writeCodeCache(script, target);
    };
    setTimeout(write, WRITE_AFTER_MS).unref();
    // A short command (`apiary status`) exits before the timer: write then, synchronously.
    process.once('exit', write);
  }
  if (env.APIARY_DEBUG) process.stderr.write(`apiary: code cache ${state}${file === undefined ? '' : ` (${file})`}\n`);
  const run = script.runInThisContext() as BundleFunction;
  const module = { exports: {} };
  run.call(module.exports, module.exports, createRequire(bundleFile), module, bundleFile, path.dirname(bundleFile), importModule);
}
