/**
 * The hive's two models over the kernel's model host: the sound model on
 * every audio frame (models/features/audio-bands.ts), and the brood
 * temperature model over a sliding window of temperature and humidity
 * readings (models/features/thermal-window.ts). This is what makes the
 * features; the host loads, verifies and runs the models.
 */
import type { AudioFrame, Reading } from '../../../devices/device.js';
import { audioFeatures } from '../../../models/features/audio-bands.js';
import { thermalFeatures, type ThermalReading } from '../../../models/features/thermal-window.js';
import type { ModelHost, ModelOutput } from '../../core/model-host.js';
import type { HiveModelsConfig } from './config.js';

export const SOUND_MODEL = 'hive-sound';
export const THERMAL_MODEL = 'hive-thermal';
/** The reading derived from each audio frame (its loudness), published like any sensor. */
export const SOUND_LEVEL_CHANNEL = { name: 'sound_level', unit: 'dBFS', label: 'Hive sound level', precision: 1 } as const;

export class HiveModels {
  private window: ThermalReading[] = [];
  private lastHumidity: number | undefined;

  constructor(private readonly config: HiveModelsConfig, private readonly host: ModelHost) {}

  /** Asks the host for the models the config enables (before the host starts). */
  use(): void {
    if (this.config.sound.enabled) this.host.use(SOUND_MODEL);
    if (this.config.thermal.enabled) this.host.use(THERMAL_MODEL);
  }

  /** Features of one audio frame; its loudness as a reading; the sound model's output. */
  async onAudio(frame: AudioFrame): Promise<{ soundLevel: Reading; output: ModelOutput | undefined }> {
    const features = audioFeatures(frame.samples, frame.sampleRate);
    const soundLevel: Reading = { channel: SOUND_LEVEL_CHANNEL.name, value: round(features.rms_dbfs ?? -120, 2), unit: SOUND_LEVEL_CHANNEL.unit, t: frame.t };
    const output = await this.host.run(SOUND_MODEL, features, frame.t);
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
    if (this.window.length < this.config.thermal.minReadings) return undefined;
    return this.host.run(THERMAL_MODEL, thermalFeatures(this.window), t);
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
