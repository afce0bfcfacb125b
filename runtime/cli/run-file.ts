/**
 * Run files: how `apiary status` (and every other node command) finds a running
 * node without repeating the flags it was started with. `apiary start` writes one
 * small JSON file per data dir into a per-user runtime folder once the node runs,
 * and removes it when it stops; a file whose process is gone is stale and removed
 * by whoever reads it.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { chmod, lstat, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

export interface RunInfo {
  nodeId: string;
  /** The URL a client on this machine connects to (the broker's, or bus.url). */
  url: string;
  port: number;
  /** Absolute. */
  dataDir: string;
  pid: number;
  topicPrefix: string;
  startedAt: string;
  version: string;
}

/** The most recently started node's run file, for scripts: `jq .url "$XDG_RUNTIME_DIR/apiary/latest.json"`. */
const LATEST = 'latest.json';

/** $XDG_RUNTIME_DIR/apiary (per user, cleared at logout), else <tmp>/apiary-<uid>. */
export function runDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'apiary');
  return path.join(os.tmpdir(), `apiary-${process.getuid?.() ?? os.userInfo().username}`);
}

/** One file per data dir: named from a hash of its absolute path, so any path fits in a file name. */
export function runFilePath(dataDir: string, dir = runDirectory()): string {
  return path.join(dir, `${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16)}.json`);
}

/**
 * The folder is only trusted if it is a real directory of this user, not open to
 * others: in a shared /tmp anyone could create `apiary-<uid>` first and plant files.
 */
function unsafeReason(dir: string, stat: { isDirectory(): boolean; isSymbolicLink(): boolean; uid: number; mode: number }): string | undefined {
  if (stat.isSymbolicLink() || !stat.isDirectory()) return `${dir} is not a directory`;
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) return `${dir} belongs to another user (uid ${stat.uid})`;
  if ((stat.mode & 0o022) !== 0) return `${dir} is writable by other users`;
  return undefined;
}

export async function writeRunFile(info: RunInfo, dir = runDirectory()): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stat = await lstat(dir);
  const unsafe = unsafeReason(dir, stat);
  if (unsafe) throw new ApiaryError(ErrorCodes.DATA_DIR_INVALID, `will not write a run file: ${unsafe}`, { hint: `remove ${dir}, or set XDG_RUNTIME_DIR to a folder only you can write` });
  if ((stat.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  const file = runFilePath(info.dataDir, dir);
  const text = `${JSON.stringify(info, null, 2)}\n`;
  await writeFileAtomic(file, text, { mode: 0o600 });
  await writeFileAtomic(path.join(dir, LATEST), text, { mode: 0o600 });
  return file;
}

/** Removes this process's run files (sync: it also runs from an 'exit' handler). Another process's are left alone. */
export function removeRunFiles(dataDir: string, pid = process.pid, dir = runDirectory()): void {
  for (const file of [runFilePath(dataDir, dir), path.join(dir, LATEST)]) {
    if (readRunFile(file)?.pid === pid) {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    }
  }
}

function readRunFile(file: string): RunInfo | undefined {
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<RunInfo>;
    const ok = typeof raw.nodeId === 'string' && typeof raw.url === 'string' && typeof raw.dataDir === 'string'
      && typeof raw.topicPrefix === 'string' && Number.isInteger(raw.pid) && (raw.pid ?? 0) > 0;
    return ok ? (raw as RunInfo) : undefined;
  } catch {
    return undefined;
  }
}

/** process.kill(pid, 0) checks without sending: ESRCH = gone; EPERM = alive, someone else's. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The nodes running on this machine for this user; run files of dead processes are removed on the way. */
export function runningNodes(dir = runDirectory()): RunInfo[] {
  let names: string[];
  try {
    if (unsafeReason(dir, lstatSync(dir))) return [];
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const nodes: RunInfo[] = [];
  for (const name of names.filter((n) => /^[0-9a-f]{16}\.json$/.test(n)).sort()) {
    const file = path.join(dir, name);
    const info = readRunFile(file);
    if (info && isAlive(info.pid)) {
      nodes.push(info);
      continue;
    }
    try {
      unlinkSync(file); // stale (its process is gone) or unreadable
    } catch {
      // another reader removed it first
    }
  }
  return nodes;
}

/**
 * The node a command without --port/--host should ask: the one running for
 * `dataDir`; if the data dir was not given explicitly and no node runs for it,
 * the only node running here. Several running: an error listing them with the flag that picks one.
 */
export function findRunningNode(options: { dataDir: string; dataDirExplicit: boolean; nodeId?: string }, dir = runDirectory()): RunInfo | undefined {
  const nodes = runningNodes(dir);
  if (options.nodeId !== undefined) return nodes.find((n) => n.nodeId === options.nodeId);
  const own = nodes.find((n) => path.resolve(n.dataDir) === path.resolve(options.dataDir));
  if (own || options.dataDirExplicit) return own;
  if (nodes.length <= 1) return nodes[0];
  throw new ApiaryError(ErrorCodes.NODE_AMBIGUOUS,
    `${nodes.length} Apiary nodes are running here, none with the default data dir ${path.resolve(options.dataDir)}:\n` +
      nodes.map((n) => `  node ${n.nodeId}  --data-dir ${n.dataDir}  (${n.url}, pid ${n.pid}, started ${n.startedAt})`).join('\n'), {
      hint: 'pick one: add its --data-dir (as listed) to this command, or --node <node id>',
    });
}
