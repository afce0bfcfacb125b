/**
 * Inference cost per backend, for each shipped model: per-call latency (p50
 * and p99) of onnxruntime-node and onnxruntime-web (WASM) against a plain
 * TypeScript evaluation of the same weights (evaluateDense) in the same run;
 * session creation on a warm runtime; and, in a fresh child process per
 * backend, the first session (import + init) and the RSS the backend adds.
 * Batches of the three are interleaved, so all see the same machine load.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { InferenceBackend, LoadedModel } from '../../models/inference/backend.js';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { OnnxRuntimeWebBackend } from '../../models/inference/onnxruntime-web-backend.js';
import { mulberry32 } from '../../models/training/softmax-regression.js';
import { packagePath } from '../../runtime/package-root.js';
import { loadDenseModel, type DenseModel } from '../models/inference/dense-reference.js';
import type { ChildMeasurement } from './inference-child.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

const CHILD = fileURLToPath(new URL('./inference-child.js', import.meta.url));
const MODELS = ['hive-sound', 'hive-thermal'] as const;
const CHILD_RUNS = 100;
const INPUT_POOL = 256;
const MB = 1024;

export interface InferencePlan {
  /** Fresh sessions per backend and model, timed on a warm runtime. */
  readonly loads: number;
  /** Timed calls per backend and model, split into `batches`; p50 and p99 are taken per batch. */
  readonly runs: number;
  readonly batches: number;
  readonly warmup: number;
  /** Fresh child processes per backend. */
  readonly children: number;
}

export const INFERENCE_QUICK: InferencePlan = { loads: 10, runs: 20_000, batches: 5, warmup: 5_000, children: 1 };
export const INFERENCE_FULL: InferencePlan = { loads: 30, runs: 200_000, batches: 5, warmup: 20_000, children: 5 };

interface Latencies { p50Us: number[]; p99Us: number[] }
interface BackendModelResult extends Latencies { readonly backend: string; readonly createMs: number[] }
export interface ModelResult {
  readonly model: string;
  readonly shape: string;
  readonly backends: BackendModelResult[];
  readonly typescript: Latencies;
}
export interface InferenceResults {
  readonly plan: InferencePlan;
  readonly models: ModelResult[];
  readonly children: ChildMeasurement[];
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

function record(into: Latencies, samplesMs: number[]): void {
  const sorted = samplesMs.sort((a, b) => a - b);
  into.p50Us.push(percentile(sorted, 0.5) * 1000);
  into.p99Us.push(percentile(sorted, 0.99) * 1000);
}

async function timeRuns(model: LoadedModel, pool: readonly Float32Array[], count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const data = pool[i % pool.length] ?? new Float32Array();
    const started = performance.now();
    await model.run({ features: { data, dims: [1, data.length] } });
    out.push(performance.now() - started);
  }
  return out;
}

function timeTypeScript(dense: DenseModel, pool: readonly number[][], count: number): number[] {
  const out: number[] = [];
  let sink = 0; // used, so the evaluation cannot be optimised away
  for (let i = 0; i < count; i += 1) {
    const x = pool[i % pool.length] ?? [];
    const started = performance.now();
    sink += dense.evaluate(x)[0] ?? 0;
    out.push(performance.now() - started);
  }
  if (Number.isNaN(sink)) throw new Error('the TypeScript evaluation gave NaN');
  return out;
}

async function timeLoads(backend: InferenceBackend, bytes: Uint8Array, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    const model = await backend.load(bytes);
    out.push(performance.now() - started);
    await model.close();
  }
  return out;
}

async function measureModel(name: string, backends: readonly InferenceBackend[], plan: InferencePlan): Promise<ModelResult> {
  const dense = await loadDenseModel(packagePath('models', name));
  const random = mulberry32(0x1fe5);
  const features = dense.weights.length;
  // The same normalised inputs for all three, rounded to float32 as the runtimes see them.
  const pool = Array.from({ length: INPUT_POOL }, () => Float32Array.from({ length: features }, () => (random() - 0.5) * 6));
  const plain = pool.map((x) => Array.from(x));
  const results: BackendModelResult[] = [];
  const sessions: LoadedModel[] = [];
  for (const backend of backends) {
    // The first load pays the import and init; it is the child processes' figure, not this one.
    await (await backend.load(dense.bytes)).close();
    results.push({ backend: backend.name, createMs: await timeLoads(backend, dense.bytes, plan.loads), p50Us: [], p99Us: [] });
    const session = await backend.load(dense.bytes);
    sessions.push(session);
    await timeRuns(session, pool, plan.warmup);
  }
  timeTypeScript(dense, plain, plan.warmup);
  const typescript: Latencies = { p50Us: [], p99Us: [] };
  const perBatch = Math.ceil(plan.runs / plan.batches);
  try {
    for (let b = 0; b < plan.batches; b += 1) {
      for (const [i, session] of sessions.entries()) record(results[i] as BackendModelResult, await timeRuns(session, pool, perBatch));
      record(typescript, timeTypeScript(dense, plain, perBatch));
    }
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
  return { model: name, shape: `${features} features → ${dense.bias.length} output${dense.bias.length > 1 ? 's' : ''}`, backends: results, typescript };
}

async function measureChild(backend: string, modelDirs: readonly string[]): Promise<ChildMeasurement> {
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, backend, String(CHILD_RUNS), ...modelDirs], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildMeasurement;
}

export async function measureInference(plan: InferencePlan, progress: (line: string) => void): Promise<InferenceResults> {
  const backends = [new OnnxRuntimeNodeBackend(), new OnnxRuntimeWebBackend()];
  const names = backends.map((b) => b.name);
  const children: ChildMeasurement[] = [];
  // Children first, while this process has not yet loaded anything that competes for memory bandwidth.
  for (let i = 0; i < plan.children; i += 1) {
    for (const name of names) {
      progress(`inference: fresh process ${i + 1}/${plan.children} for ${name}`);
      children.push(await measureChild(name, MODELS.map((m) => packagePath('models', m))));
    }
  }
  const models: ModelResult[] = [];
  for (const model of MODELS) {
    progress(`inference: ${model}, ${plan.loads} loads and ${plan.runs} runs per backend, and the TypeScript evaluation`);
    models.push(await measureModel(model, backends, plan));
  }
  return { plan, models, children };
}

export function inferenceRows(r: InferenceResults): Row[] {
  const rows: Row[] = [];
  const perBatch = Math.ceil(r.plan.runs / r.plan.batches);
  for (const m of r.models) {
    const section = `inference per call, ${m.model} (${m.shape}); median and range of ${r.plan.batches} batches of ${perBatch} calls`;
    const ts50 = summarize(m.typescript.p50Us);
    const ts99 = summarize(m.typescript.p99Us);
    for (const b of m.backends) {
      rows.push(
        { section, metric: `${b.backend} p50`, unit: 'µs', summary: summarize(b.p50Us), ...(ts50 ? { reference: { label: 'µs TypeScript p50', value: ts50.median } } : {}) },
        { section, metric: `${b.backend} p99`, unit: 'µs', summary: summarize(b.p99Us), ...(ts99 ? { reference: { label: 'µs TypeScript p99', value: ts99.median } } : {}) },
      );
    }
    rows.push(
      { section, metric: 'plain TypeScript (evaluateDense) p50', unit: 'µs', summary: ts50 },
      { section, metric: 'plain TypeScript (evaluateDense) p99', unit: 'µs', summary: ts99 },
    );
  }
  const created = `session creation, warm runtime; ${r.plan.loads} fresh sessions each`;
  for (const m of r.models) {
    for (const b of m.backends) rows.push({ section: created, metric: `${b.backend}, ${m.model}`, unit: 'ms', summary: summarize(b.createMs) });
  }
  const fresh = `one fresh process per backend (${r.plan.children} each): ${MODELS.join(' + ')} loaded, ${CHILD_RUNS} calls each`;
  rows.push({ section: fresh, metric: 'RSS before importing a backend (every child)', unit: 'MB', summary: summarize(r.children.map((c) => c.beforeKiB / MB)) });
  for (const backend of [...new Set(r.children.map((c) => c.backend))]) {
    const runs = r.children.filter((c) => c.backend === backend);
    rows.push(
      { section: fresh, metric: `${backend}: first session (import + init + create)`, unit: 'ms', summary: summarize(runs.map((c) => c.firstSessionMs)) },
      { section: fresh, metric: `${backend}: RSS added`, unit: 'MB', summary: summarize(runs.map((c) => (c.afterKiB - c.beforeKiB) / MB)) },
      { section: fresh, metric: `${backend}: peak RSS of the process`, unit: 'MB', summary: summarize(runs.map((c) => c.peakKiB / MB)) },
    );
  }
  return rows;
}
