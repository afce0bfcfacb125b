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
import { describeError, isApiaryError } from '../errors.js';
import type { Logger } from '../log.js';
import { packagePath } from '../package-root.js';

export const SOUND_MODEL = 'hive-sound';
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

export class HiveInference {
  private sound: VerifiedModel | undefined;
  private thermal: VerifiedModel | undefined;
  private window: ThermalReading[] = [];
  private lastHumidity: number | undefined;
  /** Older or shipped versions loaded to audit decisions, by sha256. */
  private readonly auditModels = new Map<string, VerifiedModel>();

  /** Models refused at start, with the reason (for status). */
  readonly refused: { model: string; dir: string; code: string; reason: string }[] = [];

  constructor(
    private readonly config: ApiaryConfig['models'],
    private readonly backend: InferenceBackend,
    private readonly options: { trust?: ModelTrust; logger?: Logger; counters?: Counters } = {},
  ) {}

  get modelsDir(): string {
    return this.config.dir ?? packagePath('models');
  }

  /** `<models.dir>/<name>`; a model that folder does not hold comes from the shipped set. */
  modelDir(name: string): string {
    const dir = path.join(this.modelsDir, name);
    return existsSync(path.join(dir, MANIFEST_FILE)) ? dir : packagePath('models', name);
  }

  async start(): Promise<void> {
    if (this.config.sound.enabled) this.sound = await this.load(SOUND_MODEL);
    if (this.config.thermal.enabled) this.thermal = await this.load(THERMAL_MODEL);
  }

  /**
   * A shipped model that fails is a broken install: start fails. A model from
   * elsewhere that is refused (hash, signature, signer) is logged and counted.
   */
  private async load(name: string): Promise<VerifiedModel | undefined> {
    const dir = this.modelDir(name);
    try {
      return await loadVerifiedModel({ dir, backend: this.backend, trust: this.options.trust ?? NO_TRUST });
    } catch (err) {
      if (!isApiaryError(err) || (await isShippedModelDir(dir))) throw err;
      this.refused.push({ model: name, dir, code: err.code, reason: err.message });
      this.options.counters?.increment('models.refused');
      this.options.logger?.error({ model: name, dir, err: describeError(err) }, `model ${name} refused: the node runs without it`);
      return undefined;
    }
  }

  /** Output labels of each loaded model, for rules and Home Assistant. */
  labels(): Record<string, readonly string[]> {
    const out: Record<string, readonly string[]> = {};
    for (const model of [this.sound, this.thermal]) {
      if (model) out[model.manifest.name] = model.manifest.outputs[0]?.labels ?? [];
    }
    return out;
  }

  models(): VerifiedModel[] {
    return [this.sound, this.thermal].filter((m): m is VerifiedModel => m !== undefined);
  }

  /** Features of one audio frame; its loudness as a reading; the sound model's output. */
  async onAudio(frame: AudioFrame): Promise<{ soundLevel: Reading; output: ModelOutput | undefined }> {
    const features = audioFeatures(frame.samples, frame.sampleRate);
    const soundLevel: Reading = { channel: SOUND_LEVEL_CHANNEL.name, value: round(features.rms_dbfs ?? -120, 2), unit: SOUND_LEVEL_CHANNEL.unit, t: frame.t };
    const output = this.sound ? await this.run(this.sound, features, frame.t) : undefined;
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
    if (!this.thermal || this.window.length < this.config.thermal.minReadings) return undefined;
    return this.run(this.thermal, thermalFeatures(this.window), t);
  }

  /**
   * A model by the sha256 of its file, for audits: a loaded one, else a
   * shipped, installed or previous version found on disk, verified with the
   * same trust rules as at start and kept until stop.
   */
  async modelBySha256(sha256: string): Promise<VerifiedModel | undefined> {
    const known = this.models().find((m) => m.sha256 === sha256) ?? this.auditModels.get(sha256);
    if (known) return known;
    for (const name of [SOUND_MODEL, THERMAL_MODEL]) {
      for (const dir of new Set([this.modelDir(name), path.join(this.modelsDir, `${name}.previous`), packagePath('models', name)])) {
        const manifest = await loadManifest(dir).catch(() => undefined);
        if (manifest?.sha256 !== sha256) continue;
        const model = await loadVerifiedModel({ dir, backend: this.backend, trust: this.options.trust ?? NO_TRUST }).catch(() => undefined);
        if (model?.sha256 !== sha256) {
          await model?.close();
          continue;
        }
        this.auditModels.set(sha256, model);
        return model;
      }
    }
    return undefined;
  }

  async stop(): Promise<void> {
    for (const model of [...this.models(), ...this.auditModels.values()]) await model.close();
    this.auditModels.clear();
    this.sound = undefined;
    this.thermal = undefined;
  }

  private async run(model: VerifiedModel, features: Record<string, number>, t: number): Promise<ModelOutput> {
    const prediction = await model.predict(features);
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

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
