/**
 * Checks that a backend computes correctly, used by the probe child (native)
 * and by `apiary doctor` (WASM, in-process), so both are judged alike.
 *
 * The self-test model is softmax(x W + b), 2 features, 3 classes, as ONNX
 * bytes written by models/onnx/onnx-writer.ts (a test rebuilds it from
 * PROBE_WEIGHTS and PROBE_BIAS and checks the bytes match). It is embedded, so
 * the self-test judges the runtime alone: a damaged model file cannot make a
 * runtime look broken, and no file or protobufjs is needed at run time.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadManifest } from '../registry/manifest.js';
import { evaluateDense } from '../training/softmax-regression.js';
import type { ProbeModelResult } from './backend-probe.js';
import type { InferenceBackend, LoadedModel } from './backend.js';
import { errorText } from './ort-session.js';

export const PROBE_MODEL_NAME = 'apiary-probe';
export const PROBE_WEIGHTS: readonly (readonly number[])[] = [
  [1.5, -0.5, 0.25],
  [-2, 1, 0.75],
];
export const PROBE_BIAS: readonly number[] = [0.1, 0, -0.1];
export const PROBE_INPUT: readonly number[] = [0.5, -1.25];
/** float32 against float64 maths on a 2x3 softmax: differences are ~1e-7. */
export const SELF_TEST_TOLERANCE = 1e-5;

const PROBE_MODEL_BASE64 =
  'CAgSBmFwaWFyeTqcAgopCghmZWF0dXJlcwoBVxIKbWF0bXVsX291dBoGbWF0bXVsIgZNYXRNdWwKJgoKbWF0bXVsX291dAoBYhIGbG9naXRzGghhZGRfYmlhcyIDQWRkCj8KBmxvZ2l0cxINcHJvYmFiaWxpdGllcxoHc29mdG1heCIHU29mdG1heCoUCgRheGlzGP///////////wGgAQISDGFwaWFyeS1wcm9iZSojCgICAxABQgFXShgAAMA/AAAAvwAAgD4AAADAAACAPwAAQD8qFgoBAxABQgFiSgzNzMw9AAAAAM3MzL1aGgoIZmVhdHVyZXMSDgoMCAESCAoCCAEKAggCYh8KDXByb2JhYmlsaXRpZXMSDgoMCAESCAoCCAEKAggDQgIQDXIUCgRuYW1lEgxhcGlhcnktcHJvYmVyEAoHdmVyc2lvbhIFMS4wLjA=';

export function probeModelBytes(): Uint8Array {
  return new Uint8Array(Buffer.from(PROBE_MODEL_BASE64, 'base64'));
}

/** What a correct runtime outputs for PROBE_INPUT, in float64. */
export function probeExpected(): number[] {
  return evaluateDense(PROBE_WEIGHTS, PROBE_BIAS, PROBE_INPUT);
}

export interface SelfTestResult {
  readonly ok: boolean;
  readonly loadMs: number;
  readonly runMs: number;
  /** Largest |output - expected|; null when the outputs were not comparable. */
  readonly maxError: number | null;
  readonly error?: string;
}

/** Reports a stage as it starts (the probe child sends them to stderr). */
export type StageReporter = (stage: string) => void;

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await run();
  return [value, performance.now() - started];
}

async function runOnce(model: LoadedModel, input: readonly number[]): Promise<number[]> {
  const out = await model.run({ features: { data: Float32Array.from(input), dims: [1, input.length] } });
  return [...(out.probabilities ?? [])];
}

/** Loads the self-test model and checks its one answer; a backend error is thrown, a wrong answer is ok: false. */
export async function runSelfTest(backend: InferenceBackend, stage: StageReporter = () => undefined): Promise<SelfTestResult> {
  stage('session self-test');
  const [model, loadMs] = await timed(() => backend.load(probeModelBytes()));
  let outputs: number[];
  let runMs: number;
  try {
    stage('run self-test');
    [outputs, runMs] = await timed(() => runOnce(model, PROBE_INPUT));
  } finally {
    await model.close();
  }
  const expected = probeExpected();
  const worst = Math.max(...expected.map((e, i) => Math.abs((outputs[i] ?? Number.NaN) - e)));
  const maxError = outputs.length === expected.length && Number.isFinite(worst) ? worst : null;
  const ok = maxError !== null && maxError <= SELF_TEST_TOLERANCE;
  return {
    ok, loadMs, runMs, maxError,
    ...(ok ? {} : { error: `self-test gave ${JSON.stringify(outputs)}, expected ${JSON.stringify(expected)} (within ${SELF_TEST_TOLERANCE})` }),
  };
}

/**
 * Runs one model folder on normalised zeros (every feature at its training
 * mean). The file's hash is not checked here: this judges the runtime, and
 * `apiary doctor` checks the hashes on their own.
 */
export async function runModelDir(backend: InferenceBackend, dir: string, stage: StageReporter = () => undefined): Promise<ProbeModelResult> {
  try {
    const manifest = await loadManifest(dir);
    const bytes = new Uint8Array(await readFile(path.join(dir, manifest.file)));
    stage(`session ${manifest.name}`);
    const [model, loadMs] = await timed(() => backend.load(bytes));
    try {
      stage(`run ${manifest.name}`);
      const [outputs, runMs] = await timed(() => runOnce(model, new Array<number>(manifest.inputs[0]?.features.length ?? 0).fill(0)));
      const ok = outputs.length > 0 && outputs.every(Number.isFinite);
      return { dir, name: manifest.name, ok, outputs, loadMs, runMs, ...(ok ? {} : { error: `outputs ${JSON.stringify(outputs)} are not all finite` }) };
    } finally {
      await model.close();
    }
  } catch (err) {
    return { dir, name: path.basename(dir), ok: false, error: errorText(err) };
  }
}
