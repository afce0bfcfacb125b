/**
 * InferenceBackend on onnxruntime-web's WebAssembly runtime, run in Node: the
 * fallback for boards where the onnxruntime-node addon cannot run. Slower per
 * call than native, but it needs only V8 (with WebAssembly SIMD), no prebuilt
 * binary for this CPU. Imported lazily, like the native backend.
 *
 * The .mjs loader and .wasm binary are read from the installed package's own
 * dist/ folder by absolute file URL: never fetched, and still found when this
 * file is bundled into dist/apiary.mjs (where import.meta.url points elsewhere).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { InferenceBackend, LoadedModel } from './backend.js';
import { BASE_SESSION_OPTIONS, loadOrtModel, runtimeImportFailed, type OrtRuntime, type SessionOptions } from './ort-session.js';

export const WEB_BACKEND_NAME = 'onnxruntime-web';

/** The plain (no WebGPU/JSEP) SIMD build: the smallest, and all the CPU execution provider needs. */
const WASM_LOADER = 'onnxruntime-web/ort-wasm-simd-threaded.mjs';
const WASM_BINARY = 'onnxruntime-web/ort-wasm-simd-threaded.wasm';

const SESSION_OPTIONS: SessionOptions = { ...BASE_SESSION_OPTIONS, executionProviders: ['wasm'] };

/** onnxruntime-web keeps its settings in one module-wide `env`: configure it once per process. */
let runtime: Promise<OrtRuntime> | undefined;

async function importRuntime(): Promise<OrtRuntime> {
  const require = createRequire(import.meta.url);
  const ort = await import('onnxruntime-web');
  const { wasm } = ort.env;
  // One thread: no worker threads, no SharedArrayBuffer; the same reasoning as the native session options.
  wasm.numThreads = 1;
  wasm.proxy = false;
  wasm.wasmPaths = { mjs: pathToFileURL(require.resolve(WASM_LOADER)).href, wasm: pathToFileURL(require.resolve(WASM_BINARY)).href };
  return ort;
}

export class OnnxRuntimeWebBackend implements InferenceBackend {
  readonly name = WEB_BACKEND_NAME;

  async load(modelBytes: Uint8Array): Promise<LoadedModel> {
    let ort: OrtRuntime;
    try {
      runtime ??= importRuntime();
      ort = await runtime;
    } catch (cause) {
      runtime = undefined; // a later call may retry (e.g. after npm install)
      throw runtimeImportFailed(this.name, 'run `npm install` so the onnxruntime-web package (with its .wasm files) is present', cause);
    }
    // The WebAssembly module itself is compiled at the first session; its errors (no SIMD, say) surface there.
    return loadOrtModel(ort, this.name, modelBytes, SESSION_OPTIONS);
  }
}
