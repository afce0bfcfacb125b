/**
 * Brood-nest thermal features over a window of in-hive readings (typically
 * the last 24 h from one sensor). A colony raising brood holds the brood nest
 * at about 34.5 °C within ±1 °C or so; a queenless, broodless or failing
 * colony lets it drift with the weather. The features describe that:
 *
 * - temp_mean, temp_std (population), temp_min, temp_max: °C over the window
 * - frac_in_brood_band: share of readings with 32.5 <= temperature <= 36.5 °C
 * - humidity_mean, humidity_std (population): %RH
 * - temp_diurnal_amplitude: the highest minus the lowest hour-of-day mean
 *   temperature, °C (the day/night swing). Readings are binned by the UTC hour
 *   of `t`; a whole-hour time-zone shift only relabels the bins, so the node
 *   needs no time zone. A window shorter than a day covers fewer bins.
 *
 * Every feature is independent of the sampling interval (the training data
 * are 15-minute readings; a node samples every minute by default), which is
 * why there is no step-to-step feature. Everything here is computed from the
 * node's own in-hive readings, so the same function serves training
 * (models/training/train-hive-thermal.ts) and the running node.
 * Readings are weighted equally, so the sampling interval should be regular.
 */
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';

export interface ThermalReading {
  /** Milliseconds since the Unix epoch. */
  readonly t: number;
  /** °C */
  readonly temperature: number;
  /** %RH */
  readonly humidity: number;
}

export const BROOD_BAND_C = { min: 32.5, max: 36.5 } as const;

export const THERMAL_FEATURE_NAMES: readonly string[] = [
  'temp_mean',
  'temp_std',
  'temp_min',
  'temp_max',
  'frac_in_brood_band',
  'humidity_mean',
  'humidity_std',
  'temp_diurnal_amplitude',
];

const HOUR_MS = 3_600_000;

function invalid(message: string, hint: string): ApiaryError {
  return new ApiaryError(ErrorCodes.MODEL_INPUT_INVALID, message, { hint });
}

export function thermalFeatures(window: readonly ThermalReading[]): Record<string, number> {
  if (window.length === 0) {
    throw invalid('thermal window is empty, expected at least one reading', 'wait until the hive sensor has reported, or widen the window');
  }
  let previousT = Number.NEGATIVE_INFINITY;
  window.forEach((r, i) => {
    for (const key of ['t', 'temperature', 'humidity'] as const) {
      if (typeof r[key] !== 'number' || !Number.isFinite(r[key])) {
        throw invalid(`thermal reading #${i} has ${key} = ${String(r[key])}, expected a finite number`, 'drop readings with missing or broken sensor values before computing features');
      }
    }
    if (r.t < previousT) {
      throw invalid(`thermal reading #${i} has t = ${r.t}, earlier than reading #${i - 1} (t = ${previousT}); expected times sorted ascending`, 'sort the window by time before computing features');
    }
    previousT = r.t;
  });

  const n = window.length;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let inBand = 0;
  let humiditySum = 0;
  const hourSum = new Array<number>(24).fill(0);
  const hourCount = new Array<number>(24).fill(0);
  for (const r of window) {
    sum += r.temperature;
    min = Math.min(min, r.temperature);
    max = Math.max(max, r.temperature);
    if (r.temperature >= BROOD_BAND_C.min && r.temperature <= BROOD_BAND_C.max) inBand++;
    humiditySum += r.humidity;
    const hour = Math.floor(r.t / HOUR_MS) % 24;
    const bin = hour < 0 ? hour + 24 : hour;
    hourSum[bin] = (hourSum[bin] ?? 0) + r.temperature;
    hourCount[bin] = (hourCount[bin] ?? 0) + 1;
  }
  const mean = sum / n;
  const humidityMean = humiditySum / n;
  let squares = 0;
  let humiditySquares = 0;
  for (const r of window) {
    squares += (r.temperature - mean) ** 2;
    humiditySquares += (r.humidity - humidityMean) ** 2;
  }
  let hourMin = Number.POSITIVE_INFINITY;
  let hourMax = Number.NEGATIVE_INFINITY;
  hourCount.forEach((count, h) => {
    if (count === 0) return;
    const hourMean = (hourSum[h] ?? 0) / count;
    hourMin = Math.min(hourMin, hourMean);
    hourMax = Math.max(hourMax, hourMean);
  });

  return {
    temp_mean: mean,
    temp_std: Math.sqrt(squares / n),
    temp_min: min,
    temp_max: max,
    frac_in_brood_band: inBand / n,
    humidity_mean: humidityMean,
    humidity_std: Math.sqrt(humiditySquares / n),
    temp_diurnal_amplitude: hourMax - hourMin,
  };
}
