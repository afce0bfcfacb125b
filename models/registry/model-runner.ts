/**
 * A model the node may trust: manifest validated, file hash verified, then
 * loaded by a backend. `predict` takes named features, so callers never depend
 * on tensor order, and checks what goes in and what comes out, because a NaN
 * that reaches a decision rule silently becomes "no alarm".
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { InferenceBackend } from '../inference/backend.js';
import { loadManifest, verifyModelFile } from './manifest.js';
import type { ModelManifest } from './manifest.js';
import { verifyModelDir, type ModelTrust } from './manifest-signature.js';

export const MODEL_INPUT_NAME = 'features';
export const MODEL_OUTPUT_NAME = 'probabilities';
/** float32 softmax outputs sum to 1 within a few ulp; this leaves room without hiding a broken model. */
const SUM_TOLERANCE = 1e-4;
const RANGE_TOLERANCE = 1e-6;

export interface Prediction {
  /** Output label -> probability, in manifest label order. */
  readonly probabilities: Record<string, number>;
  /**
   * Softmax models: the most probable label. Single-output (sigmoid) models:
   * the label if p >= 0.5, else `not_<label>`.
   */
  readonly label: string;
  /** sha256 hex of the normalised input as little-endian float32: ties an audit record to the exact input. */
  readonly inputHash: string;
}

export interface VerifiedModel {
  readonly manifest: ModelManifest;
  /** sha256 of the model file that was verified and loaded. */
  readonly sha256: string;
  /** Who vouches for it: "shipped" with Apiary, the signing owner's key, or "unchecked" (no trust given). */
  readonly signer: string;
  predict(features: Readonly<Record<string, number>>): Promise<Prediction>;
  close(): Promise<void>;
}

/**
 * `trust`: the owners whose signed models this node runs (see
 * manifest-signature.ts); the node always passes it. Without it only the
 * hash is checked: for the build pipeline, which has just written the model.
 */
export async function loadVerifiedModel(options: { dir: string; backend: InferenceBackend; trust?: ModelTrust }): Promise<VerifiedModel> {
  const { dir, backend, trust } = options;
  let manifest: ModelManifest;
  let file: Awaited<ReturnType<typeof verifyModelFile>>;
  let signer = 'unchecked';
  if (trust) {
    const verdict = await verifyModelDir(dir, trust);
    ({ manifest, file } = verdict);
    signer = verdict.shipped ? 'shipped' : (verdict.signer?.publicKey ?? 'unchecked');
  } else {
    manifest = await loadManifest(dir);
    file = await verifyModelFile(dir, manifest);
  }
  const loaded = await backend.load(file.bytes);
  if (!loaded.inputNames.includes(MODEL_INPUT_NAME) || !loaded.outputNames.includes(MODEL_OUTPUT_NAME)) {
    await loaded.close();
    throw new ApiaryError(
      ErrorCodes.MODEL_LOAD_FAILED,
      `${file.path} has inputs [${loaded.inputNames.join(', ')}] and outputs [${loaded.outputNames.join(', ')}], ` +
        `expected input "${MODEL_INPUT_NAME}" and output "${MODEL_OUTPUT_NAME}"`,
      { hint: 'the model file does not match its manifest: reinstall the model or re-run `npm run models:build`' },
    );
  }

  const specs = manifest.inputs[0]?.features ?? [];
  const labels = manifest.outputs[0]?.labels ?? [];
  const source = path.join(dir, manifest.file);

  const predict = async (features: Readonly<Record<string, number>>): Promise<Prediction> => {
    const input = new Float32Array(specs.length);
    specs.forEach((spec, i) => {
      const value = features[spec.name];
      if (value === undefined || typeof value !== 'number' || !Number.isFinite(value)) {
        throw new ApiaryError(
          ErrorCodes.MODEL_INPUT_INVALID,
          `feature "${spec.name}" for model ${manifest.name} is ${value === undefined ? 'missing' : `not a finite number (${String(value)})`}`,
          { hint: `compute "${spec.name}" (${spec.description}, unit ${spec.unit || 'none'}) before calling predict; expected features: ${specs.map((s) => s.name).join(', ')}` },
        );
      }
      input[i] = (value - spec.mean) / spec.std;
    });
    const inputHash = createHash('sha256').update(littleEndianBytes(input)).digest('hex');

    const outputs = await loaded.run({ [MODEL_INPUT_NAME]: { data: input, dims: [1, specs.length] } });
    const probs = outputs[MODEL_OUTPUT_NAME];
    const outputError = (what: string) =>
      new ApiaryError(ErrorCodes.MODEL_OUTPUT_INVALID, `model ${source} output "${MODEL_OUTPUT_NAME}" ${what}`, {
        hint: 'the model or its manifest is broken: reinstall the model or re-run `npm run models:build`',
      });
    if (!probs || probs.length !== labels.length) {
      throw outputError(`has ${probs?.length ?? 0} values, expected ${labels.length} (one per manifest label)`);
    }
    let sum = 0;
    const probabilities: Record<string, number> = {};
    let best = 0;
    labels.forEach((label, i) => {
      const p = probs[i] ?? Number.NaN;
      if (!Number.isFinite(p) || p < -RANGE_TOLERANCE || p > 1 + RANGE_TOLERANCE) {
        throw outputError(`for "${label}" is ${p}, expected a probability in [0, 1]`);
      }
      probabilities[label] = p;
      sum += p;
      if (p > (probs[best] ?? -1)) best = i;
    });
    if (labels.length >= 2 && Math.abs(sum - 1) > SUM_TOLERANCE) {
      throw outputError(`sums to ${sum}, expected 1 (softmax)`);
    }
    const first = labels[0] ?? '';
    const label = labels.length >= 2 ? (labels[best] ?? first) : (probs[0] ?? 0) >= 0.5 ? first : `not_${first}`;
    return { probabilities, label, inputHash };
  };

  return { manifest, sha256: file.sha256, signer, predict, close: () => loaded.close() };
}

/** Explicit little-endian so the hash is the same on every board. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}
