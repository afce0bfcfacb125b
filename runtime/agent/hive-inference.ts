/**
 * On-device inference for the hive: the sound model on every audio frame,
 * and the brood-temperature model over a sliding window of readings. Models
 * are loaded only after their manifest and sha256 check out.
 */
import path from 'node:path';
import type { AudioFrame, Reading } from '../../devices/device.js';
import { audioFeatures } from '../../models/features/audio-bands.js';
import { thermalFeatures, type ThermalReading } from '../../models/features/thermal-window.js';
import type { InferenceBackend } from '../../models/inference/backend.js';
import { loadVerifiedModel, type VerifiedModel } from '../../models/registry/model-runner.js';
import type { ApiaryConfig } from '../config/schema.js';
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
  readonly features: Record<string, number>;
  readonly t: number;
}

export class HiveInference {
  private sound: VerifiedModel | undefined;
  private thermal: VerifiedModel | undefined;
  private window: ThermalReading[] = [];
  private lastHumidity: number | undefined;

  constructor(private readonly config: ApiaryConfig['models'], private readonly backend: InferenceBackend) {}

  get modelsDir(): string {
    return this.config.dir ?? packagePath('models');
  }

  async start(): Promise<void> {
    if (this.config.sound.enabled) this.sound = await loadVerifiedModel({ dir: path.join(this.modelsDir, SOUND_MODEL), backend: this.backend });
    if (this.config.thermal.enabled) this.thermal = await loadVerifiedModel({ dir: path.join(this.modelsDir, THERMAL_MODEL), backend: this.backend });
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

  async stop(): Promise<void> {
    for (const model of this.models()) await model.close();
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
      features: Object.fromEntries(Object.entries(features).map(([k, v]) => [k, round(v, 4)])),
      t,
    };
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
