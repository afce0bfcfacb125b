/**
 * InferenceBackend on onnxruntime-node (CPU). The native addon is imported
 * lazily inside `load`, so a node that never runs a model does not pay its
 * start-up cost or memory; the type-only import below is erased at build.
 */
import type * as Ort from 'onnxruntime-node';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { InferenceBackend, LoadedModel, NamedTensors } from './backend.js';

/**
 * One thread, sequential execution: a Pi Zero 2 W has 4 slow cores shared with
 * sensing and networking, and our models are tiny, so threads cost more than
 * they give. Full graph optimisation is a one-off cost at load.
 */
const SESSION_OPTIONS: Ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  // The arena and memory patterns pre-allocate for large tensors; our inputs are a few
  // floats, and on a 512 MB board the resident memory matters more than allocation speed.
  enableCpuMemArena: false,
  enableMemPattern: false,
};

export class OnnxRuntimeNodeBackend implements InferenceBackend {
  readonly name = 'onnxruntime-node';

  async load(modelBytes: Uint8Array): Promise<LoadedModel> {
    let ort: typeof Ort;
    try {
      ort = await import('onnxruntime-node');
    } catch (cause) {
      throw new ApiaryError(ErrorCodes.MODEL_LOAD_FAILED, 'cannot load the onnxruntime-node native module', {
        hint: 'run `npm install` on this machine so onnxruntime-node fetches binaries for its CPU (linux arm64 / x64)',
        cause,
      });
    }
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelBytes, SESSION_OPTIONS);
    } catch (cause) {
      throw new ApiaryError(
        ErrorCodes.MODEL_LOAD_FAILED,
        `onnxruntime-node could not load the model (${modelBytes.byteLength} bytes): ${errorText(cause)}`,
        { hint: 'the file is not a valid ONNX model for this runtime: reinstall the model or re-run `npm run models:build`', cause },
      );
    }
    return new OrtLoadedModel(ort, session);
  }
}

class OrtLoadedModel implements LoadedModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  #session: Ort.InferenceSession | undefined;

  constructor(
    private readonly ort: typeof Ort,
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
      throw new ApiaryError(ErrorCodes.MODEL_INPUT_INVALID, `onnxruntime-node rejected the inputs: ${errorText(cause)}`, {
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
