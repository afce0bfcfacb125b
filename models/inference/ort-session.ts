/**
 * What the onnxruntime-node and onnxruntime-web backends share. Both packages
 * re-export onnxruntime-common's API (InferenceSession, Tensor), so session
 * creation, input feeds and output checks are written once here; each backend
 * file only says how to import and configure its runtime. The type-only import
 * below is erased at build: nothing here loads a runtime.
 */
import type * as Ort from 'onnxruntime-common';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { LoadedModel, NamedTensors } from './backend.js';

/** The part of a runtime module the backends use. */
export interface OrtRuntime {
  readonly InferenceSession: typeof Ort.InferenceSession;
  readonly Tensor: typeof Ort.Tensor;
}

export type SessionOptions = Ort.InferenceSession.SessionOptions;

/**
 * One thread, sequential execution: a Pi Zero 2 W has 4 slow cores shared with
 * sensing and networking, and our models are tiny, so threads cost more than
 * they give. Full graph optimisation is a one-off cost at load.
 */
export const BASE_SESSION_OPTIONS: SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // The arena and memory patterns pre-allocate for large tensors; our inputs are a few
  // floats, and on a 512 MB board the resident memory matters more than allocation speed.
  enableCpuMemArena: false,
  enableMemPattern: false,
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The runtime module itself could not be imported (not installed, or no binary for this CPU). */
export function runtimeImportFailed(backend: string, hint: string, cause: unknown): ApiaryError {
  return new ApiaryError(ErrorCodes.MODEL_LOAD_FAILED, `cannot load the ${backend} module: ${errorText(cause)}`, { hint, cause });
}

/** Creates a session on `ort` and wraps it; a file the runtime refuses is MODEL_LOAD_FAILED. */
export async function loadOrtModel(ort: OrtRuntime, backend: string, modelBytes: Uint8Array, options: SessionOptions): Promise<LoadedModel> {
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, options);
  } catch (cause) {
    throw new ApiaryError(
      ErrorCodes.MODEL_LOAD_FAILED,
      `${backend} could not load the model (${modelBytes.byteLength} bytes): ${errorText(cause)}`,
      { hint: 'the file is not a valid ONNX model for this runtime: reinstall the model or re-run `npm run models:build`', cause },
    );
  }
  return new OrtLoadedModel(ort, backend, session);
}

class OrtLoadedModel implements LoadedModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  #session: Ort.InferenceSession | undefined;

  constructor(
    private readonly ort: OrtRuntime,
    private readonly backend: string,
    session: Ort.InferenceSession,
  ) {
    this.#session = session;
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  async run(inputs: NamedTensors): Promise<Record<string, Float32Array>> {
    const session = this.#session;
    if (!session) {
      throw new ApiaryError(ErrorCodes.MODEL_LOAD_FAILED, 'model was closed before run()', {
        hint: 'load the model again; do not call run() after close()',
      });
    }
    const feeds: Record<string, Ort.Tensor> = {};
    for (const name of this.inputNames) {
      const input = inputs[name];
      if (!input) {
        throw new ApiaryError(ErrorCodes.MODEL_INPUT_INVALID, `model input "${name}" is missing (got ${Object.keys(inputs).join(', ') || 'none'})`, {
          hint: `pass a tensor named "${name}"`,
        });
      }
      feeds[name] = new this.ort.Tensor('float32', input.data, input.dims);
    }
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (cause) {
      throw new ApiaryError(ErrorCodes.MODEL_INPUT_INVALID, `${this.backend} rejected the inputs: ${errorText(cause)}`, {
        hint: 'check the input tensor shapes against the model manifest',
        cause,
      });
    }
    const out: Record<string, Float32Array> = {};
    for (const name of this.outputNames) {
      const tensor = results[name];
      if (!tensor || !(tensor.data instanceof Float32Array)) {
        throw new ApiaryError(
          ErrorCodes.MODEL_OUTPUT_INVALID,
          `model output "${name}" is ${tensor ? `of type ${tensor.type}` : 'missing'}, expected float32`,
          { hint: 'the model does not match its manifest: reinstall the model or re-run `npm run models:build`' },
        );
      }
      // Copy: the tensor's memory belongs to the runtime.
      out[name] = Float32Array.from(tensor.data);
    }
    return out;
  }

  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.release();
  }
}
