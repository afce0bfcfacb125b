/**
 * The plain TypeScript reference for a shipped dense model: its weights read
 * back from the ONNX file itself (initializers W [n, k] and b [k], float32
 * little-endian), evaluated with evaluateDense, the build's own maths.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadManifest, type ModelManifest } from '../../../models/registry/manifest.js';
import { onnxModelProto } from '../../../models/onnx/onnx-writer.js';
import { evaluateDense } from '../../../models/training/softmax-regression.js';

export interface DenseModel {
  readonly manifest: ModelManifest;
  readonly bytes: Uint8Array;
  /** [features][classes] */
  readonly weights: number[][];
  readonly bias: number[];
  /** softmax / sigmoid of x W + b in float64; x is the normalised input. */
  evaluate(x: readonly number[]): number[];
}

interface Initializer {
  name?: string;
  dims?: number[];
  raw_data?: Uint8Array;
}

function floats(tensor: Initializer | undefined, name: string): { dims: number[]; values: number[] } {
  const raw = tensor?.raw_data;
  if (!tensor?.dims || !raw) throw new Error(`initializer ${name} is missing or has no raw_data`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return { dims: tensor.dims, values: Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true)) };
}

export function denseWeightsFromOnnx(bytes: Uint8Array): { weights: number[][]; bias: number[] } {
  const type = onnxModelProto();
  const model = type.toObject(type.decode(bytes), { longs: Number }) as { graph?: { initializer?: Initializer[] } };
  const find = (name: string) => model.graph?.initializer?.find((t) => t.name === name);
  const w = floats(find('W'), 'W');
  const b = floats(find('b'), 'b');
  const [n = 0, k = 0] = w.dims;
  if (k !== b.values.length || n * k !== w.values.length) throw new Error(`W ${w.dims.join('x')} does not match b [${b.values.length}]`);
  return { weights: Array.from({ length: n }, (_, i) => w.values.slice(i * k, (i + 1) * k)), bias: b.values };
}

export async function loadDenseModel(dir: string): Promise<DenseModel> {
  const manifest = await loadManifest(dir);
  const bytes = new Uint8Array(await readFile(path.join(dir, manifest.file)));
  const { weights, bias } = denseWeightsFromOnnx(bytes);
  return { manifest, bytes, weights, bias, evaluate: (x) => evaluateDense(weights, bias, x) };
}

/** (raw - mean) / std per manifest feature, rounded to float32 as the runtimes see it. */
export function normalise(manifest: ModelManifest, features: Readonly<Record<string, number>>): number[] {
  const specs = manifest.inputs[0]?.features ?? [];
  return Array.from(Float32Array.from(specs.map((s) => ((features[s.name] ?? Number.NaN) - s.mean) / s.std)));
}
