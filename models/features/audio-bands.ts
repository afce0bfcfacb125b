/**
 * Hive-sound features: log band energies of the power spectrum plus loudness.
 *
 * Spec (the `hive-sound` model was trained on exactly this; change it and the
 * model must be rebuilt with `npm run models:build`):
 * - Input: mono samples in [-1, 1] at AUDIO_SAMPLE_RATE = 2205 Hz (the OSBH
 *   BuzzBox rate; Nyquist 1102.5 Hz covers the 100-600 Hz bee range).
 * - Frames of AUDIO_FRAME_SIZE = 2048 samples (0.93 s, 1.077 Hz bins). A longer
 *   input is split into frames with a hop of 1024 (50 % overlap) and their
 *   power spectra are averaged (Welch); samples after the last whole frame are
 *   ignored.
 * - Per frame: subtract the frame mean (so a microphone DC offset does not
 *   flood the 0-100 Hz band), multiply by a periodic Hann window, real FFT
 *   (fft.js), power |X[k]|^2 / sum(w^2) for bins k = 0..1024.
 * - Bands (Hz, lower edge inclusive, upper exclusive, the last also includes
 *   Nyquist): 0-100, 100-200, 200-300, 300-400, 400-500, 500-700, 700-1102.
 *   Bin k has frequency k * 2205 / 2048.
 * - Features: `band_<lo>_<hi>` = log10(mean power of the band's bins + 1e-12),
 *   and `rms_dbfs` = 20 * log10(RMS of the analysed samples + 1e-10), where
 *   full scale is amplitude 1 (a full-scale sine is -3.01 dBFS).
 */
import FFT from 'fft.js';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';

export const AUDIO_SAMPLE_RATE = 2205;
export const AUDIO_FRAME_SIZE = 2048;
export const AUDIO_HOP_SIZE = AUDIO_FRAME_SIZE / 2;

/** [low, high) in Hz; the last band runs to Nyquist (1102.5 Hz). */
export const AUDIO_BANDS_HZ: readonly (readonly [number, number])[] = [
  [0, 100],
  [100, 200],
  [200, 300],
  [300, 400],
  [400, 500],
  [500, 700],
  [700, 1102],
];

export const AUDIO_FEATURE_NAMES: readonly string[] = [...AUDIO_BANDS_HZ.map(([lo, hi]) => `band_${lo}_${hi}`), 'rms_dbfs'];

const POWER_EPSILON = 1e-12;
const RMS_EPSILON = 1e-10;
/** OSBH .dat amplitudes are nominally [-1, 1]; a little headroom, but reject obviously wrong scales. */
const DAT_AMPLITUDE_LIMIT = 1.5;

interface Analyser {
  readonly fft: FFT;
  readonly window: Float64Array;
  readonly windowPower: number;
  /** bandOfBin[k] = band index of FFT bin k. */
  readonly bandOfBin: Int32Array;
  readonly binsPerBand: Int32Array;
}

let analyser: Analyser | undefined;

function getAnalyser(): Analyser {
  if (analyser) return analyser;
  const n = AUDIO_FRAME_SIZE;
  const window = new Float64Array(n);
  let windowPower = 0;
  for (let i = 0; i < n; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    window[i] = w;
    windowPower += w * w;
  }
  const bins = n / 2 + 1;
  const bandOfBin = new Int32Array(bins);
  const binsPerBand = new Int32Array(AUDIO_BANDS_HZ.length);
  const last = AUDIO_BANDS_HZ.length - 1;
  for (let k = 0; k < bins; k++) {
    const f = (k * AUDIO_SAMPLE_RATE) / n;
    let band = AUDIO_BANDS_HZ.findIndex(([lo, hi]) => f >= lo && f < hi);
    if (band < 0) band = last; // 1102 Hz .. Nyquist
    bandOfBin[k] = band;
    binsPerBand[band] = (binsPerBand[band] ?? 0) + 1;
  }
  analyser = { fft: new FFT(n), window, windowPower, bandOfBin, binsPerBand };
  return analyser;
}

function invalid(message: string, hint: string): ApiaryError {
  return new ApiaryError(ErrorCodes.MODEL_INPUT_INVALID, message, { hint });
}

/** Computes the features named by AUDIO_FEATURE_NAMES; see the header for the spec. */
export function audioFeatures(samples: Float32Array, sampleRate: number): Record<string, number> {
  if (sampleRate !== AUDIO_SAMPLE_RATE) {
    throw invalid(
      `audio sample rate is ${sampleRate} Hz, expected ${AUDIO_SAMPLE_RATE} Hz`,
      `resample the audio to ${AUDIO_SAMPLE_RATE} Hz before computing features`,
    );
  }
  if (samples.length < AUDIO_FRAME_SIZE) {
    throw invalid(
      `audio has ${samples.length} samples, expected at least ${AUDIO_FRAME_SIZE} (one frame)`,
      `record at least ${(AUDIO_FRAME_SIZE / AUDIO_SAMPLE_RATE).toFixed(2)} s of audio`,
    );
  }
  const badIndex = samples.findIndex((s) => !Number.isFinite(s));
  if (badIndex >= 0) {
    throw invalid(`audio sample #${badIndex} is ${samples[badIndex]}, expected a finite number`, 'check the audio source for dropouts or decoding errors');
  }

  const { fft, window, windowPower, bandOfBin, binsPerBand } = getAnalyser();
  const n = AUDIO_FRAME_SIZE;
  const frames = Math.floor((samples.length - n) / AUDIO_HOP_SIZE) + 1;
  const bandPower = new Float64Array(AUDIO_BANDS_HZ.length);
  const frame = new Array<number>(n).fill(0);
  const spectrum = new Array<number>(2 * n).fill(0);
  for (let f = 0; f < frames; f++) {
    const start = f * AUDIO_HOP_SIZE;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += samples[start + i] ?? 0;
    mean /= n;
    for (let i = 0; i < n; i++) frame[i] = ((samples[start + i] ?? 0) - mean) * (window[i] ?? 0);
    // realTransform fills bins 0..n/2 of the interleaved [re, im] output, which is all we read.
    fft.realTransform(spectrum, frame);
    for (let k = 0; k <= n / 2; k++) {
      const re = spectrum[2 * k] ?? 0;
      const im = spectrum[2 * k + 1] ?? 0;
      const band = bandOfBin[k] ?? 0;
      bandPower[band] = (bandPower[band] ?? 0) + (re * re + im * im) / windowPower;
    }
  }

  let sumSquares = 0;
  const analysed = (frames - 1) * AUDIO_HOP_SIZE + n;
  for (let i = 0; i < analysed; i++) sumSquares += (samples[i] ?? 0) ** 2;

  const out: Record<string, number> = {};
  AUDIO_BANDS_HZ.forEach(([lo, hi], b) => {
    const meanPower = (bandPower[b] ?? 0) / ((binsPerBand[b] ?? 1) * frames);
    out[`band_${lo}_${hi}`] = Math.log10(meanPower + POWER_EPSILON);
  });
  out.rms_dbfs = 20 * Math.log10(Math.sqrt(sumSquares / analysed) + RMS_EPSILON);
  return out;
}

const NUMBER_PATTERN = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses an OSBH `.dat` clip: one sample per line. Strict, because `Number()`
 * would quietly turn a blank line into 0 and "0x1" into 1.
 */
export function parseOsbhDat(text: string, source = 'OSBH .dat text'): Float32Array {
  const lines = text.replace(/\s+$/, '').split(/\r?\n/);
  if (lines.length === 1 && lines[0] === '') {
    throw invalid(`${source} is empty, expected one sample per line`, 'check that the right file was read');
  }
  const samples = new Float32Array(lines.length);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const value = NUMBER_PATTERN.test(line) ? Number(line) : Number.NaN;
    if (!Number.isFinite(value) || Math.abs(value) > DAT_AMPLITUDE_LIMIT) {
      throw invalid(
        `${source} line ${i + 1} is ${JSON.stringify(raw)}, expected a finite number in [-${DAT_AMPLITUDE_LIMIT}, ${DAT_AMPLITUDE_LIMIT}]`,
        'the file must hold one float sample per line, amplitude in [-1, 1]; re-copy it from the source',
      );
    }
    samples[i] = value;
  });
  return samples;
}
