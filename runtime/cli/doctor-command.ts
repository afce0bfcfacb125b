/**
 * `apiary doctor`: can this machine run the models, and how? It probes
 * onnxruntime-node afresh in a child process (where a crash cannot take the
 * doctor down), runs onnxruntime-web (WASM) in-process, runs every shipped
 * model on both and compares their outputs, checks the shipped models'
 * hashes, and says which backend a node with this config would use. On a
 * board it also lists what the kernel shows (doctor-board.ts), reads each
 * configured Linux sensor once (doctor-sensors.ts), and checks disk space,
 * the clock and the service (doctor-system.ts), each with a fix hint.
 * Exit code 0 when at least one backend works, 1 when none does: the board,
 * sensor and system findings are warnings, since a node runs without them.
 * An invalid config is named first and exits 78, but the checks that need no
 * config (backends, shipped models, board, system) still run: a board whose
 * first-boot config is wrong is the one that most needs the rest.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probeNativeBackend, type ProbeModelResult, type ProbeOptions } from '../../models/inference/backend-probe.js';
import { NODE_BACKEND_NAME } from '../../models/inference/onnxruntime-node-backend.js';
import { OnnxRuntimeWebBackend, WEB_BACKEND_NAME } from '../../models/inference/onnxruntime-web-backend.js';
import { errorText } from '../../models/inference/ort-session.js';
import { PROBE_CACHE_FILE, cpuDescription, installedVersion, probeKey, readProbeCache, writeProbeCache } from '../../models/inference/probe-cache.js';
import { runModelDir, runSelfTest, SELF_TEST_TOLERANCE } from '../../models/inference/self-test.js';
import { loadManifest, MANIFEST_FILE, verifyModelFile } from '../../models/registry/manifest.js';
import { parseConfig } from '../config/load-config.js';
import type { ApiaryConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { packagePath } from '../package-root.js';
import { boardReport, formatBoard, type BoardReport } from './doctor-board.js';
import { formatVoice, voiceReport, type VoiceReport } from './doctor-voice.js';
import { formatSensors, sensorChecks, type SensorCheck } from './doctor-sensors.js';
import { formatSystem, systemReport, type SystemReport } from './doctor-system.js';
import { EXIT_CONFIG, isConfigError } from './node-options.js';

export interface BackendCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly reason: string;
  readonly ms: number;
  readonly models: readonly ProbeModelResult[];
}

export interface DoctorReport {
  /** At least one backend works, and the config is valid. */
  readonly ok: boolean;
  /** The config's verdict: when invalid, what needs it (selection, probe cache, sensors) is null. */
  readonly config: { readonly valid: true } | { readonly valid: false; readonly code: string; readonly error: string };
  readonly platform: { readonly os: string; readonly arch: string; readonly node: string; readonly cpu: string; readonly packages: Record<string, string> };
  readonly backends: readonly BackendCheck[];
  /** Per shipped model: the largest difference between the native and WASM outputs on the same input. */
  readonly agreement: readonly { readonly model: string; readonly maxDiff: number; readonly agree: boolean }[];
  readonly selected: { readonly preference: string; readonly backend: string | null; readonly reason: string } | null;
  readonly cache: { readonly file: string; readonly state: string; readonly updated: boolean } | null;
  readonly models: readonly { readonly name: string; readonly version: string; readonly sha256: string; readonly ok: boolean; readonly error?: string }[];
  /** What the kernel shows under the root ("/", or --root). */
  readonly board: BoardReport;
  /** Each configured sensor read once; null when device.kind is not linux (or the config is invalid). */
  readonly sensors: readonly SensorCheck[] | null;
  readonly system: SystemReport;
  /** The voice's programs and sound devices, when the config turns voice on (voice.enabled); else null. */
  readonly voice: VoiceReport | null;
}

export interface DoctorOptions {
  /** Lets a test stand in a failing native probe child. */
  probe?: ProbeOptions;
  /** Where /sys, /dev, /proc and /run are read: --root, else device.linux.root, else "/". */
  root?: string;
  /** The data dir whose disk is checked when there is no valid config (--data-dir, else the default). */
  dataDir?: string;
}

/** Why there is no config to check against. */
export interface ConfigProblem {
  readonly invalid: unknown;
}

async function shippedModelDirs(): Promise<string[]> {
  const root = packagePath('models');
  const entries = await readdir(root, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, MANIFEST_FILE)))
    .map((e) => path.join(root, e.name))
    .sort();
}

async function checkWeb(dirs: readonly string[]): Promise<BackendCheck> {
  const started = performance.now();
  const backend = new OnnxRuntimeWebBackend();
  try {
    const self = await runSelfTest(backend);
    const models = [];
    for (const dir of dirs) models.push(await runModelDir(backend, dir));
    const ms = Math.round(performance.now() - started);
    const reason = self.ok
      ? `${WEB_BACKEND_NAME} ${installedVersion(WEB_BACKEND_NAME)} ran the self-test model correctly (max error ${self.maxError?.toExponential(1) ?? '?'}) in this process`
      : `${WEB_BACKEND_NAME} computed wrongly: ${self.error ?? '?'}`;
    return { name: WEB_BACKEND_NAME, ok: self.ok, reason, ms, models };
  } catch (err) {
    return { name: WEB_BACKEND_NAME, ok: false, reason: `${WEB_BACKEND_NAME} failed: ${errorText(err)}`, ms: Math.round(performance.now() - started), models: [] };
  }
}

async function checkHash(dir: string): Promise<DoctorReport['models'][number]> {
  try {
    const manifest = await loadManifest(dir);
    const file = await verifyModelFile(dir, manifest);
    return { name: manifest.name, version: manifest.version, sha256: file.sha256, ok: true };
  } catch (err) {
    return { name: path.basename(dir), version: '?', sha256: '?', ok: false, error: errorText(err) };
  }
}

function agreement(native: BackendCheck, web: BackendCheck): DoctorReport['agreement'] {
  return native.models.flatMap((a) => {
    const b = web.models.find((m) => m.name === a.name);
    if (!a.outputs || !b?.outputs || a.outputs.length !== b.outputs.length) return [];
    const maxDiff = Math.max(...a.outputs.map((v, i) => Math.abs(v - (b.outputs?.[i] ?? Number.NaN))));
    return [{ model: a.name, maxDiff, agree: maxDiff <= SELF_TEST_TOLERANCE }];
  });
}

function choose(preference: string, native: BackendCheck, web: BackendCheck): DoctorReport['selected'] {
  if (preference !== 'auto') {
    const check = preference === NODE_BACKEND_NAME ? native : web;
    return { preference, backend: preference, reason: `models.backend is ${preference}${check.ok ? '' : ', but it does NOT work here: set models.backend: auto'}` };
  }
  if (native.ok) return { preference, backend: NODE_BACKEND_NAME, reason: 'the native probe passed' };
  if (web.ok) return { preference, backend: WEB_BACKEND_NAME, reason: 'the native probe failed: falls back to WASM' };
  return { preference, backend: null, reason: 'no backend works: the node cannot run models here' };
}

/** Everything `apiary doctor` prints; with a ConfigProblem, everything that needs no config. */
export async function doctorReport(config: ApiaryConfig | ConfigProblem, options: DoctorOptions = {}): Promise<DoctorReport> {
  const valid = 'invalid' in config ? undefined : config;
  const linux = valid?.device.kind === 'linux' ? valid.device.linux : undefined;
  const root = path.resolve(options.root ?? linux?.root ?? '/');
  const dirs = await shippedModelDirs();
  const models = await Promise.all(dirs.map(checkHash));
  const verdict = await probeNativeBackend({ ...options.probe, modelDirs: dirs });
  const native: BackendCheck = { name: NODE_BACKEND_NAME, ok: verdict.ok, reason: verdict.reason, ms: verdict.ms, models: verdict.models };
  const web = await checkWeb(dirs);
  const dataDir = valid?.node.dataDir ?? options.dataDir ?? parseConfig({}).node.dataDir;
  const key = probeKey();
  let cache: DoctorReport['cache'] = null;
  if (valid) {
    const cached = await readProbeCache(dataDir, key);
    // The fresh verdict replaces the node's cached one, so a node started after the doctor follows it.
    const updated = verdict.cacheable && existsSync(dataDir) && (await writeProbeCache(dataDir, key, verdict).then(() => true, () => false));
    cache = { file: path.join(dataDir, PROBE_CACHE_FILE), state: cached.state, updated };
  }
  const problem = 'invalid' in config ? config.invalid : undefined;
  return {
    ok: (native.ok || web.ok) && valid !== undefined,
    config: valid ? { valid: true } : { valid: false, code: isConfigError(problem) ? problem.code : 'unknown', error: describeError(problem) },
    platform: { os: process.platform, arch: process.arch, node: process.versions.node, cpu: cpuDescription(), packages: { [NODE_BACKEND_NAME]: key.onnxruntimeNode, [WEB_BACKEND_NAME]: installedVersion(WEB_BACKEND_NAME) } },
    backends: [native, web],
    agreement: agreement(native, web),
    selected: valid ? choose(valid.models.backend, native, web) : null,
    cache,
    models,
    board: await boardReport(root),
    sensors: linux ? await sensorChecks(linux, root) : null,
    system: await systemReport(dataDir, root),
    voice: valid?.voice.enabled ? await voiceReport(valid.voice.pocketsphinx.modelDir ? { modelDir: valid.voice.pocketsphinx.modelDir } : {}) : null,
  };
}

const fixed = (values: readonly number[] | undefined) => (values ?? []).map((v) => v.toFixed(4)).join(', ');

export function formatDoctor(report: DoctorReport): string {
  const { platform: p } = report;
  const lines = report.config.valid ? [] : [
    `config: INVALID: ${report.config.error}`,
    '  (the checks below need no config; the backend choice, the probe cache and the configured sensors are skipped)',
    '',
  ];
  lines.push(
    'platform',
    `  ${p.os} ${p.arch}, Node.js ${p.node}, ${os.cpus().length} CPUs`,
    `  cpu: ${p.cpu}`,
    `  ${Object.entries(p.packages).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    'inference backends',
  );
  for (const b of report.backends) {
    lines.push(`  ${b.name.padEnd(17)} ${b.ok ? 'works' : 'FAILS'}  (${b.ms} ms)`, `    ${b.reason}`);
    for (const m of b.models) lines.push(`    ${m.name}: ${m.ok ? `ok, outputs on a mean input [${fixed(m.outputs)}]` : `FAILED: ${m.error ?? '?'}`}`);
  }
  for (const a of report.agreement) lines.push(`  ${a.model}: native and WASM outputs ${a.agree ? 'agree' : 'DISAGREE'} (max difference ${a.maxDiff.toExponential(1)}, tolerance ${SELF_TEST_TOLERANCE.toExponential(0)})`);
  const s = report.selected;
  if (s) lines.push('', `this node would use: ${s.backend ?? 'none'} (models.backend: ${s.preference}; ${s.reason})`);
  const c = report.cache;
  if (c) lines.push(`probe cache: ${c.file} (${c.state}${c.updated ? ', replaced by this probe' : ''})`);
  lines.push('', 'shipped models');
  for (const m of report.models) lines.push(`  ${m.name.padEnd(14)} ${m.version.padEnd(7)} sha256 ${m.sha256.slice(0, 12)}  ${m.ok ? 'hash ok' : `FAILED: ${m.error ?? '?'}`}`);
  lines.push('', ...formatBoard(report.board));
  if (report.config.valid) lines.push('', ...formatSensors(report.sensors));
  lines.push('', ...formatSystem(report.system), '');
  if (report.voice) lines.push(...formatVoice(report.voice), '');
  const works = report.backends.some((b) => b.ok);
  if (!report.config.valid) lines.push('FAILED: the config is invalid (see the top): fix it; the findings above do not depend on it');
  lines.push(works ? 'ok: at least one backend works' : 'FAILED: no inference backend works on this machine');
  return `${lines.join('\n')}\n`;
}

/** Loads the config through `load`; a config error is named on stderr, and the rest is checked without it. */
export async function doctorCommand(load: () => ApiaryConfig, options: { json?: boolean; root?: string; dataDir?: string }): Promise<void> {
  let config: ApiaryConfig | ConfigProblem;
  try {
    config = load();
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`apiary: ${describeError(err)}\n`);
    config = { invalid: err };
  }
  const report = await doctorReport(config, { ...(options.root === undefined ? {} : { root: options.root }), ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }) });
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
  if (!report.config.valid) process.exitCode = EXIT_CONFIG;
  else if (!report.ok) process.exitCode = 1;
}
