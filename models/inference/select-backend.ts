/**
 * Which runtime runs the models (`models.backend`): onnxruntime-node when it
 * works here, else onnxruntime-web (WASM). With `auto`, "works here" is the
 * cached verdict of the child-process probe (backend-probe.ts), so a CPU that
 * the native addon would crash costs one dead child, never the node.
 */
import type { Counters } from '../../runtime/counters.js';
import type { Logger } from '../../runtime/log.js';
import type { InferenceBackend, LoadedModel } from './backend.js';
import type { ProbeOptions, ProbeVerdict } from './backend-probe.js';
import { NODE_BACKEND_NAME, OnnxRuntimeNodeBackend } from './onnxruntime-node-backend.js';
import { OnnxRuntimeWebBackend, WEB_BACKEND_NAME } from './onnxruntime-web-backend.js';
import { cachedProbe, type ProbeKey } from './probe-cache.js';

export const BACKEND_PREFERENCES = ['auto', NODE_BACKEND_NAME, WEB_BACKEND_NAME] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

export interface SelectBackendOptions {
  readonly preference: BackendPreference;
  /** Where the probe verdict is cached (the node's data dir). */
  readonly dataDir: string;
  readonly logger?: Logger;
  readonly counters?: Counters;
  /** How to probe (tests inject a child that crashes). */
  readonly probe?: ProbeOptions;
  readonly key?: ProbeKey;
}

export interface BackendSelection {
  readonly backend: InferenceBackend;
  /** Why this one, for logs and `apiary status`. */
  readonly reason: string;
  /** The probe verdict behind an `auto` choice. */
  readonly probe?: ProbeVerdict & { readonly cached: boolean };
}

export async function selectInferenceBackend(options: SelectBackendOptions): Promise<BackendSelection> {
  const { preference, logger, counters } = options;
  if (preference !== 'auto') {
    const reason = `models.backend is ${preference} (not probed)`;
    logger?.info({ backend: preference }, `inference backend: ${reason}`);
    return { backend: preference === NODE_BACKEND_NAME ? new OnnxRuntimeNodeBackend() : new OnnxRuntimeWebBackend(), reason };
  }
  const probe = await cachedProbe(options);
  const source = probe.cached ? 'cached probe' : 'probe';
  if (probe.ok) {
    const reason = `${source}: ${probe.reason}`;
    logger?.info({ backend: NODE_BACKEND_NAME, cached: probe.cached }, `inference backend: ${reason}`);
    return { backend: new OnnxRuntimeNodeBackend(), reason, probe };
  }
  counters?.increment('inference.backend_fallback');
  const reason = `${source}: onnxruntime-node does not work here (${probe.reason}); using onnxruntime-web (WASM)`;
  logger?.warn({ backend: WEB_BACKEND_NAME, cached: probe.cached }, `inference backend: ${reason}`);
  return { backend: new OnnxRuntimeWebBackend(), reason, probe };
}

/**
 * An InferenceBackend that chooses on its first load: a node with every model
 * disabled never probes, and the probe runs where models load (after the
 * first reading), not in the node's start-up path.
 */
export class SelectedInferenceBackend implements InferenceBackend {
  #selection: Promise<BackendSelection> | undefined;
  #chosen: BackendSelection | undefined;

  constructor(private readonly options: SelectBackendOptions) {}

  get name(): string {
    return this.#chosen?.backend.name ?? `${this.options.preference} (not chosen yet)`;
  }

  /** The choice and its reason, once a model has been loaded. */
  get selection(): { readonly backend: string; readonly reason: string } | undefined {
    return this.#chosen && { backend: this.#chosen.backend.name, reason: this.#chosen.reason };
  }

  async load(modelBytes: Uint8Array): Promise<LoadedModel> {
    this.#selection ??= selectInferenceBackend(this.options).then((chosen) => (this.#chosen = chosen));
    return (await this.#selection).backend.load(modelBytes);
  }
}
