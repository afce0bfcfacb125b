/**
 * InferenceBackend on onnxruntime-node (CPU). The native addon is imported
 * lazily inside `load`, so a node that never runs a model does not pay its
 * start-up cost or memory. On some ARM boards the prebuilt addon dies with an
 * illegal instruction, taking the process with it: `select-backend.ts` probes
 * it in a child process before a node uses it.
 */
import type { InferenceBackend, LoadedModel } from './backend.js';
import { BASE_SESSION_OPTIONS, loadOrtModel, runtimeImportFailed, type OrtRuntime } from './ort-session.js';

export const NODE_BACKEND_NAME = 'onnxruntime-node';

export class OnnxRuntimeNodeBackend implements InferenceBackend {
  readonly name = NODE_BACKEND_NAME;

  async load(modelBytes: Uint8Array): Promise<LoadedModel> {
    let ort: OrtRuntime;
    try {
      ort = await import('onnxruntime-node');
    } catch (cause) {
      throw runtimeImportFailed(this.name, 'run `npm install` on this machine so onnxruntime-node fetches binaries for its CPU (linux arm64 / x64), or set models.backend: onnxruntime-web', cause);
    }
    return loadOrtModel(ort, this.name, modelBytes, BASE_SESSION_OPTIONS);
  }
}
