/**
 * Writes one dense classifier as `<outDir>/<name>/model.onnx` plus its
 * validated `manifest.json` (and any extra files, e.g. `metrics.json`), then
 * loads it back through the real registry path (sha256 check +
 * onnxruntime-node) and checks its outputs against the TypeScript maths.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OnnxRuntimeNodeBackend } from '../inference/onnxruntime-node-backend.js';
import { buildDenseClassifierOnnx } from '../onnx/onnx-writer.js';
import { parseManifest, sha256Hex } from '../registry/manifest.js';
import type { ManifestFeature, ModelManifest } from '../registry/manifest.js';
import { loadVerifiedModel } from '../registry/model-runner.js';

export const DEFAULT_MODEL_VERSION = '0.1.0';
export const AUTHORS = ['Apiary contributors'];

export interface BuiltModel {
  readonly name: string;
  readonly dir: string;
  readonly sha256: string;
}

export interface ModelToWrite {
  name: string;
  version?: string;
  description: string;
  features: ManifestFeature[];
  labels: string[];
  weights: number[][];
  bias: number[];
  training: ModelManifest['training'];
  license?: string;
  /** Feature sets whose ONNX output must match the TypeScript evaluation. */
  check: { features: Record<string, number>; expected: number[] }[];
  /** More files to write beside the model: file name -> text. */
  extraFiles?: Record<string, string>;
}

export async function writeModel(outDir: string, log: (line: string) => void, m: ModelToWrite): Promise<BuiltModel> {
  const dir = path.join(outDir, m.name);
  const version = m.version ?? DEFAULT_MODEL_VERSION;
  const bytes = buildDenseClassifierOnnx({
    weights: m.weights,
    bias: m.bias,
    modelName: m.name,
    modelVersion: version,
    docString: m.description,
  });
  const sha256 = sha256Hex(bytes);
  // Validate before writing, so a schema change breaks the build rather than a node.
  const manifest = parseManifest(
    {
      name: m.name,
      version,
      description: m.description,
      file: 'model.onnx',
      sha256,
      inputs: [{ name: 'features', features: m.features }],
      outputs: [{ name: 'probabilities', labels: m.labels }],
      training: m.training,
      license: m.license ?? 'MIT',
      authors: AUTHORS,
    } satisfies ModelManifest,
    `${m.name} manifest`,
  );
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const [file, text] of Object.entries(m.extraFiles ?? {})) await writeFile(path.join(dir, file), text);
  log(`  wrote ${path.join(dir, 'model.onnx')} (${bytes.length} bytes, sha256 ${sha256})`);

  const model = await loadVerifiedModel({ dir, backend: new OnnxRuntimeNodeBackend() });
  try {
    for (const { features, expected } of m.check) {
      const { probabilities } = await model.predict(features);
      const worst = Math.max(...m.labels.map((label, i) => Math.abs((probabilities[label] ?? Number.NaN) - (expected[i] ?? 0))));
      if (!(worst <= 1e-4)) throw new Error(`${m.name}: onnxruntime output differs from the TypeScript evaluation by ${worst}`);
    }
  } finally {
    await model.close();
  }
  log(`  verified ${m.name} through onnxruntime-node (${m.check.length} checks)`);
  return { name: m.name, dir, sha256 };
}
