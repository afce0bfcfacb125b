/**
 * The kernel's model host: loads the models an application asks for, each
 * only after its manifest, sha256 and (for models not shipped with Apiary)
 * the owner's signature check out, and tests it on its own input range
 * before it runs. A refused model from elsewhere is logged and counted, and
 * the node runs on the shipped version. It knows no model by name: whoever
 * `use`s a model says which, and turns its input into features.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { InferenceBackend } from '../../models/inference/backend.js';
import { loadManifest, MANIFEST_FILE } from '../../models/registry/manifest.js';
import { isShippedModelDir, NO_TRUST, type ModelTrust } from '../../models/registry/manifest-signature.js';
import { loadVerifiedModel, type VerifiedModel } from '../../models/registry/model-runner.js';
import type { Counters } from '../counters.js';
import { describeError, ErrorCodes, isApiaryError } from '../errors.js';
import type { Logger } from '../log.js';
import { packagePath } from '../package-root.js';
import type { ModelOutput } from './model-types.js';

export type { ModelOutput } from './model-types.js';

/** Sessions kept open for auditing older model versions: each is small, but not free on a 512 MB board. */
const MAX_AUDIT_MODELS = 4;

export interface ModelHostOptions {
  /** `models.dir` from the config: where installed and updated models live; default `<dataDir>/models`. */
  readonly dir?: string | undefined;
  readonly trust?: ModelTrust;
  readonly logger?: Logger;
  readonly counters?: Counters;
  /** The node's data dir: models are installed in `<dataDir>/models` unless `dir` says otherwise. */
  readonly dataDir?: string;
}

/**
 * Runs a freshly loaded model on its features at their means and at ±2 std
 * (normalised inputs 0 and ±2): `predict` refuses outputs that are not
 * probabilities, so a model that loads but computes nonsense fails here.
 */
async function selfTest(model: VerifiedModel): Promise<void> {
  const specs = model.manifest.inputs[0]?.features ?? [];
  for (const k of [0, 2, -2]) await model.predict(Object.fromEntries(specs.map((f) => [f.name, f.mean + k * f.std])));
}

export class ModelHost {
  /** Loaded models by name; `reload` swaps one while the others run on. */
  private readonly loadedModels = new Map<string, VerifiedModel>();
  /** The models the node runs, in the order they were asked for. */
  private readonly wanted = new Set<string>();
  private readonly invalidOutputWatchers = new Set<(model: VerifiedModel, err: Error) => void>();
  /** Older or shipped versions loaded to audit decisions, by auditKey. */
  private readonly auditModels = new Map<string, VerifiedModel>();

  /** Models refused at start, with the reason (for status). */
  readonly refused: { model: string; dir: string; code: string; reason: string }[] = [];

  constructor(
    private readonly backend: InferenceBackend,
    private readonly options: ModelHostOptions = {},
  ) {}

  /** `models.dir`, else `<dataDir>/models` (where `apiary models install` and mesh updates put models). */
  get modelsDir(): string {
    return this.options.dir ?? (this.options.dataDir !== undefined ? path.join(this.options.dataDir, 'models') : packagePath('models'));
  }

  /** Whose signed models this node runs. */
  get trust(): ModelTrust {
    return this.options.trust ?? NO_TRUST;
  }

  /** Asks for a model by name (before start): it is loaded, verified and tested with the others. */
  use(name: string): void {
    this.wanted.add(name);
  }

  /** The models this node runs, loaded or not. */
  names(): string[] {
    return [...this.wanted];
  }

  /** Calls `watcher` when a loaded model gives invalid outputs (model updates roll such a version back); returns the unwatch. */
  watchInvalidOutputs(watcher: (model: VerifiedModel, err: Error) => void): () => void {
    this.invalidOutputWatchers.add(watcher);
    return () => this.invalidOutputWatchers.delete(watcher);
  }

  loaded(name: string): VerifiedModel | undefined {
    return this.loadedModels.get(name);
  }

  /** `<models.dir>/<name>`; a model that folder does not hold comes from the shipped set. */
  modelDir(name: string): string {
    const dir = path.join(this.modelsDir, name);
    return existsSync(path.join(dir, MANIFEST_FILE)) ? dir : packagePath('models', name);
  }

  async start(): Promise<void> {
    for (const name of this.names()) {
      const model = await this.load(name);
      if (model) this.loadedModels.set(name, model);
    }
  }

  /**
   * Loads `name` again from its folder (after an update), checks that it
   * gives valid outputs across its input range, and only then puts it in
   * place of the running version, which is closed. If the new one fails,
   * this throws and the running version stays.
   */
  async reload(name: string): Promise<VerifiedModel> {
    const model = await loadVerifiedModel({ dir: this.modelDir(name), backend: this.backend, trust: this.options.trust ?? NO_TRUST });
    try {
      await selfTest(model);
    } catch (err) {
      await model.close();
      throw err;
    }
    const old = this.loadedModels.get(name);
    this.loadedModels.set(name, model);
    if (old && auditKey(old.sha256, old.manifest.version) !== auditKey(model.sha256, model.manifest.version)) await this.keepForAudit(old); // decisions it made can still be audited
    else await old?.close();
    return model;
  }

  /**
   * A shipped model that fails is a broken install: start fails. A model from
   * elsewhere that is refused (hash, signature, signer) or does not pass the
   * self-test is logged and counted, and the shipped version runs instead.
   */
  private async load(name: string): Promise<VerifiedModel | undefined> {
    const dir = this.modelDir(name);
    const trust = this.options.trust ?? NO_TRUST;
    let model: VerifiedModel | undefined;
    try {
      model = await loadVerifiedModel({ dir, backend: this.backend, trust });
      // An update the node had swapped in but not yet tested when it stopped is tested now.
      if (model.signer !== 'shipped') await selfTest(model);
      return model;
    } catch (err) {
      await model?.close();
      if (!isApiaryError(err) || (await isShippedModelDir(dir))) throw err;
      this.refused.push({ model: name, dir, code: err.code, reason: err.message });
      this.options.counters?.increment('models.refused');
      this.options.logger?.error({ model: name, dir, err: describeError(err) }, `model ${name} refused: the node runs the shipped version instead`);
      return loadVerifiedModel({ dir: packagePath('models', name), backend: this.backend, trust });
    }
  }

  /** Output labels of each loaded model, for rules and Home Assistant. */
  labels(): Record<string, readonly string[]> {
    const out: Record<string, readonly string[]> = {};
    for (const model of this.loadedModels.values()) out[model.manifest.name] = model.manifest.outputs[0]?.labels ?? [];
    return out;
  }

  models(): VerifiedModel[] {
    return [...this.loadedModels.values()];
  }

  /**
   * A model by its version and the sha256 of its file, for audits (the
   * manifest's normalisation is part of the model, so both must match): a
   * loaded one, else a shipped, installed or previous version found on disk,
   * verified with the same trust rules as at start.
   */
  async modelFor(sha256: string, version: string): Promise<VerifiedModel | undefined> {
    const key = auditKey(sha256, version);
    const known = this.models().find((m) => auditKey(m.sha256, m.manifest.version) === key) ?? this.auditModels.get(key);
    if (known) return known;
    for (const name of this.names()) {
      for (const dir of new Set([this.modelDir(name), path.join(this.modelsDir, `${name}.previous`), packagePath('models', name)])) {
        const manifest = await loadManifest(dir).catch(() => undefined);
        if (!manifest || auditKey(manifest.sha256, manifest.version) !== key) continue;
        const model = await loadVerifiedModel({ dir, backend: this.backend, trust: this.options.trust ?? NO_TRUST }).catch(() => undefined);
        if (!model || auditKey(model.sha256, model.manifest.version) !== key) {
          await model?.close();
          continue;
        }
        await this.keepForAudit(model);
        return model;
      }
    }
    return undefined;
  }

  /** Keeps a model other than the running ones open for audits; the oldest beyond a few is closed (and reloaded from disk if asked for again). */
  private async keepForAudit(model: VerifiedModel): Promise<void> {
    this.auditModels.set(auditKey(model.sha256, model.manifest.version), model);
    for (const [key, old] of this.auditModels) {
      if (this.auditModels.size <= MAX_AUDIT_MODELS) break;
      this.auditModels.delete(key);
      await old.close();
    }
  }

  async stop(): Promise<void> {
    for (const model of [...this.models(), ...this.auditModels.values()]) await model.close();
    this.auditModels.clear();
    this.loadedModels.clear();
  }

  /** Runs the loaded model `name` on `features` (undefined when it is not loaded). */
  async run(name: string, features: Record<string, number>, t: number): Promise<ModelOutput | undefined> {
    const model = this.loadedModels.get(name);
    return model ? this.runModel(model, features, t) : undefined;
  }

  private async runModel(model: VerifiedModel, features: Record<string, number>, t: number): Promise<ModelOutput> {
    let prediction;
    try {
      prediction = await model.predict(features);
    } catch (err) {
      // Inputs refused or bad outputs from a model that passed its checks at load: whoever installed it decides (mesh updates roll back).
      if (isApiaryError(err) && (err.code === ErrorCodes.MODEL_OUTPUT_INVALID || err.code === ErrorCodes.MODEL_INPUT_INVALID)) {
        for (const watcher of this.invalidOutputWatchers) watcher(model, err);
      }
      throw err;
    }
    return {
      model: model.manifest.name,
      version: model.manifest.version,
      sha256: model.sha256,
      label: prediction.label,
      probabilities: prediction.probabilities,
      inputHash: prediction.inputHash,
      features,
      t,
    };
  }
}

const auditKey = (sha256: string, version: string) => `${sha256}@${version}`;
