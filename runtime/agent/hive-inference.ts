/**
 * On-device inference for the hive: the sound model on every audio frame,
 * and the brood-temperature model over a sliding window of readings. Models
 * are loaded only after their manifest, sha256 and (for models not shipped
 * with Apiary) the owner's signature check out. A refused model from
 * elsewhere is logged and counted, and the node runs on without it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AudioFrame, Reading } from '../../devices/device.js';
import { audioFeatures } from '../../models/features/audio-bands.js';
import { thermalFeatures, type ThermalReading } from '../../models/features/thermal-window.js';
import type { InferenceBackend } from '../../models/inference/backend.js';
import { loadManifest, MANIFEST_FILE } from '../../models/registry/manifest.js';
import { isShippedModelDir, NO_TRUST, type ModelTrust } from '../../models/registry/manifest-signature.js';
import { loadVerifiedModel, type VerifiedModel } from '../../models/registry/model-runner.js';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import { describeError, ErrorCodes, isApiaryError } from '../errors.js';
import type { Logger } from '../log.js';
import { packagePath } from '../package-root.js';

export const SOUND_MODEL = 'hive-sound';
/** Sessions kept open for auditing older model versions: each is small, but not free on a 512 MB board. */
const MAX_AUDIT_MODELS = 4;
export const THERMAL_MODEL = 'hive-thermal';
/** The reading derived from each audio frame (its loudness), published like any sensor. */
export const SOUND_LEVEL_CHANNEL = { name: 'sound_level', unit: 'dBFS', label: 'Hive sound level', precision: 1 } as const;

export interface ModelOutput {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
  readonly label: string;
  readonly probabilities: Record<string, number>;
  /** sha256 of the exact normalised input: ties the output to what the model saw. */
  readonly inputHash: string;
  /** Unrounded, so an auditor can recompute inputHash from them (see decision-audit.ts). */
  readonly features: Record<string, number>;
  readonly t: number;
}

export interface HiveInferenceOptions {
  readonly trust?: ModelTrust;
  readonly logger?: Logger;
  readonly counters?: Counters;
  /** The node's data dir: models are installed in `<dataDir>/models` unless `models.dir` says otherwise. */
  readonly dataDir?: string;
  /** A loaded model gave outputs that are not probabilities. */
  readonly onInvalidOutput?: (model: VerifiedModel, err: Error) => void;
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

export class HiveInference {
  /** Loaded models by name; `reload` swaps one while the others run on. */
  private readonly loadedModels = new Map<string, VerifiedModel>();
  private window: ThermalReading[] = [];
  private lastHumidity: number | undefined;
  /** Older or shipped versions loaded to audit decisions, by auditKey. */
  private readonly auditModels = new Map<string, VerifiedModel>();

  /** Models refused at start, with the reason (for status). */
  readonly refused: { model: string; dir: string; code: string; reason: string }[] = [];

  constructor(
    private readonly config: ApiaryConfig['models'],
    private readonly backend: InferenceBackend,
    private readonly options: HiveInferenceOptions = {},
  ) {}

  /** `models.dir`, else `<dataDir>/models` (where `apiary models install` and mesh updates put models). */
  get modelsDir(): string {
    return this.config.dir ?? (this.options.dataDir !== undefined ? path.join(this.options.dataDir, 'models') : packagePath('models'));
  }

  /** The models this node runs (enabled in the config), loaded or not. */
  names(): string[] {
    return [...(this.config.sound.enabled ? [SOUND_MODEL] : []), ...(this.config.thermal.enabled ? [THERMAL_MODEL] : [])];
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

  /** Features of one audio frame; its loudness as a reading; the sound model's output. */
  async onAudio(frame: AudioFrame): Promise<{ soundLevel: Reading; output: ModelOutput | undefined }> {
    const features = audioFeatures(frame.samples, frame.sampleRate);
    const soundLevel: Reading = { channel: SOUND_LEVEL_CHANNEL.name, value: round(features.rms_dbfs ?? -120, 2), unit: SOUND_LEVEL_CHANNEL.unit, t: frame.t };
    const sound = this.loadedModels.get(SOUND_MODEL);
    const output = sound ? await this.run(sound, features, frame.t) : undefined;
    return { soundLevel, output };
  }

  /** Keeps the temperature/humidity window up to date. */
  onReading(reading: Reading): void {
    if (reading.channel === 'humidity') this.lastHumidity = reading.value;
    if (reading.channel !== 'temperature' || this.lastHumidity === undefined) return;
    if (this.window.length > 0 && reading.t < (this.window.at(-1)?.t ?? 0)) return; // out of order: keep the window sorted
    this.window.push({ t: reading.t, temperature: reading.value, humidity: this.lastHumidity });
    const oldest = reading.t - this.config.thermal.window;
    let drop = 0;
    while (drop < this.window.length && (this.window[drop]?.t ?? 0) < oldest) drop++;
    if (drop > 0) this.window = this.window.slice(drop);
  }

  /**
   * Puts readings stored before a restart back into the window, so the model
   * sees a full day again at once instead of a day later. Only readings older
   * than the window's current first entry are taken, so the order holds.
   */
  restoreWindow(stored: readonly Reading[], now: number): number {
    const oldest = now - this.config.thermal.window;
    const firstCurrent = this.window[0]?.t ?? Number.POSITIVE_INFINITY;
    const restored: ThermalReading[] = [];
    let humidity: number | undefined;
    for (const reading of [...stored].sort((a, b) => a.t - b.t)) {
      if (reading.t < oldest || reading.t >= firstCurrent) continue;
      if (reading.channel === 'humidity') humidity = reading.value;
      else if (reading.channel === 'temperature' && humidity !== undefined) restored.push({ t: reading.t, temperature: reading.value, humidity });
    }
    this.window = [...restored, ...this.window];
    return restored.length;
  }

  get windowSize(): number {
    return this.window.length;
  }

  /** Runs the brood-temperature model on the current window, if it holds enough readings. */
  async runThermal(t: number): Promise<ModelOutput | undefined> {
    const thermal = this.loadedModels.get(THERMAL_MODEL);
    if (!thermal || this.window.length < this.config.thermal.minReadings) return undefined;
    return this.run(thermal, thermalFeatures(this.window), t);
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
    for (const name of [SOUND_MODEL, THERMAL_MODEL]) {
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

  private async run(model: VerifiedModel, features: Record<string, number>, t: number): Promise<ModelOutput> {
    let prediction;
    try {
      prediction = await model.predict(features);
    } catch (err) {
      // Inputs refused or bad outputs from a model that passed its checks at load: whoever installed it decides (mesh updates roll back).
      if (isApiaryError(err) && (err.code === ErrorCodes.MODEL_OUTPUT_INVALID || err.code === ErrorCodes.MODEL_INPUT_INVALID)) this.options.onInvalidOutput?.(model, err);
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

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
