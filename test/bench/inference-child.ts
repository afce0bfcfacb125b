/**
 * One backend in a fresh process, for what a backend costs on its own:
 * `node inference-child.js <onnxruntime-node|onnxruntime-web> <runs> <model dir>...`.
 * Reads the models, notes RSS, then imports the runtime and loads every model
 * (timing the first session, which includes the import and, for WASM, the
 * module compile), runs each `runs` times, and notes RSS again. Prints one
 * JSON line. A process per backend, so neither pollutes the other's figures.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceBackend } from '../../models/inference/backend.js';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { OnnxRuntimeWebBackend } from '../../models/inference/onnxruntime-web-backend.js';
import { loadManifest } from '../../models/registry/manifest.js';
import { mulberry32 } from '../../models/training/softmax-regression.js';
import { memory } from './proc.js';

export interface ChildMeasurement {
  readonly backend: string;
  readonly beforeKiB: number;
  readonly afterKiB: number;
  readonly peakKiB: number;
  /** ms from importing the runtime to the first session ready. */
  readonly firstSessionMs: number;
}

const BACKENDS: Readonly<Record<string, () => InferenceBackend>> = {
  'onnxruntime-node': () => new OnnxRuntimeNodeBackend(),
  'onnxruntime-web': () => new OnnxRuntimeWebBackend(),
};

async function main(): Promise<ChildMeasurement> {
  const [name = '', runsArg = '', ...dirs] = process.argv.slice(2);
  const create = BACKENDS[name];
  const runs = Number(runsArg);
  if (!create || !Number.isInteger(runs) || dirs.length === 0) throw new Error(`usage: inference-child.js ${Object.keys(BACKENDS).join('|')} <runs> <model dir>...`);
  const models = [];
  for (const dir of dirs) {
    const manifest = await loadManifest(dir);
    models.push({ features: manifest.inputs[0]?.features.length ?? 0, bytes: new Uint8Array(await readFile(path.join(dir, manifest.file))) });
  }
  const before = await memory(process.pid);
  const backend = create();
  const started = performance.now();
  const loaded = [await backend.load(models[0]?.bytes ?? new Uint8Array())];
  const firstSessionMs = performance.now() - started;
  for (const model of models.slice(1)) loaded.push(await backend.load(model.bytes));
  const random = mulberry32(0xbe9c);
  for (const [i, model] of loaded.entries()) {
    const n = models[i]?.features ?? 0;
    for (let r = 0; r < runs; r += 1) {
      await model.run({ features: { data: Float32Array.from({ length: n }, () => (random() - 0.5) * 6), dims: [1, n] } });
    }
  }
  const after = await memory(process.pid);
  await Promise.all(loaded.map((m) => m.close()));
  return { backend: name, beforeKiB: before.rssKiB, afterKiB: after.rssKiB, peakKiB: after.hwmKiB, firstSessionMs };
}

main().then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (err: unknown) => {
    process.stderr.write(`inference-child: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
