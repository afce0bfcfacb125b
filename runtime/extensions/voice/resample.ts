/**
 * Mono mixdown and sample-rate conversion in plain TypeScript, so the voice
 * path needs no sox at run time (espeak-ng writes 22,050 Hz, a USB microphone
 * may give 44.1 or 48 kHz; the recogniser wants 16 kHz).
 *
 * Band-limited interpolation (J. O. Smith, "Digital Audio Resampling"): each
 * output sample is a sum of input samples weighted by a sinc low-pass
 * centred on its position, Blackman-windowed to ZERO_CROSSINGS lobes each
 * side. When downsampling, the low-pass sits at CUTOFF of the output's
 * Nyquist frequency so what cannot be represented is filtered, not aliased.
 * About 2 x 16 / ratio multiply-adds per output sample: ~1.5 M per second of
 * 22,050 Hz audio, a few milliseconds on a Pi.
 *
 * Streaming: `push` returns the output samples whose window is complete,
 * keeping the tail for the next call; `flush` pads with silence.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { MAX_RATE, MIN_RATE } from './wav.js';
import type { Pcm } from './types.js';

const ZERO_CROSSINGS = 16;
/** Fraction of the output Nyquist kept when downsampling: the filter's transition band sits above it. */
const CUTOFF = 0.92;

/** Table resolution: kernel values per zero crossing, linearly interpolated between (Smith's "Lp"). */
const TABLE_STEPS = 512;

/** sinc(u) x Blackman window over |u| <= ZERO_CROSSINGS, sampled TABLE_STEPS per unit of u. */
const KERNEL = (() => {
  const n = ZERO_CROSSINGS * TABLE_STEPS;
  const table = new Float64Array(n + 2);
  for (let i = 0; i <= n; i++) {
    const u = i / TABLE_STEPS;
    const w = u / ZERO_CROSSINGS; // 0..1
    const sinc = i === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    table[i] = sinc * (0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w));
  }
  return table;
})();

function kernel(u: number): number {
  const x = Math.abs(u) * TABLE_STEPS;
  const i = Math.floor(x);
  if (i >= ZERO_CROSSINGS * TABLE_STEPS) return 0;
  const a = KERNEL[i] ?? 0;
  return a + ((KERNEL[i + 1] ?? 0) - a) * (x - i);
}

function clamp16(v: number): number {
  const r = Math.round(v);
  return r > 32767 ? 32767 : r < -32768 ? -32768 : r;
}

/** Averages interleaved channels into one. */
export function toMono(samples: Int16Array, channels: number): Float32Array {
  const frames = Math.floor(samples.length / channels);
  const out = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += samples[f * channels + c] ?? 0;
    out[f] = sum / channels;
  }
  return out;
}

export class Resampler {
  private readonly step: number; // input samples per output sample
  private readonly fc: number; // cutoff as a fraction of the input Nyquist
  private readonly halfWidth: number; // in input samples
  private buf = new Float32Array(0);
  private base = 0; // absolute index of buf[0]
  private total = 0; // input samples pushed so far
  private next = 0; // index of the next output sample
  private partial = new Int16Array(0); // a frame split across pushes

  constructor(readonly fromRate: number, readonly toRate: number, readonly channels = 1) {
    for (const [name, rate] of [['fromRate', fromRate], ['toRate', toRate]] as const) {
      if (!Number.isInteger(rate) || rate < MIN_RATE || rate > MAX_RATE) {
        throw new ApiaryError(ErrorCodes.AUDIO_INVALID, `resampler ${name} ${rate} is outside ${MIN_RATE}..${MAX_RATE} Hz`, { hint: 'pass an integer sample rate in Hz' });
      }
    }
    if (!Number.isInteger(channels) || channels < 1) throw new ApiaryError(ErrorCodes.AUDIO_INVALID, `resampler channels ${channels} is not a positive integer`);
    this.step = fromRate / toRate;
    this.fc = Math.min(1, (toRate / fromRate) * CUTOFF);
    this.halfWidth = ZERO_CROSSINGS / this.fc;
  }

  /** Interleaved samples in, mono samples at `toRate` out. */
  push(samples: Int16Array): Int16Array {
    let input = samples;
    if (this.partial.length > 0) {
      input = new Int16Array(this.partial.length + samples.length);
      input.set(this.partial);
      input.set(samples, this.partial.length);
    }
    const whole = input.length - (input.length % this.channels);
    this.partial = input.slice(whole);
    const mono = toMono(input.subarray(0, whole), this.channels);
    if (this.fromRate === this.toRate) return Int16Array.from(mono, clamp16);
    const merged = new Float32Array(this.buf.length + mono.length);
    merged.set(this.buf);
    merged.set(mono, this.buf.length);
    this.buf = merged;
    this.total += mono.length;
    return this.drain(false);
  }

  /** The rest, as if silence followed. */
  flush(): Int16Array {
    if (this.fromRate === this.toRate) return new Int16Array(0);
    return this.drain(true);
  }

  private drain(final: boolean): Int16Array {
    const out: number[] = [];
    for (;;) {
      const t = this.next * this.step;
      if (final ? t >= this.total : Math.floor(t + this.halfWidth) >= this.total) break;
      out.push(clamp16(this.at(t)));
      this.next++;
    }
    // Drop the input no later output sample reaches back to.
    const keepFrom = Math.max(this.base, Math.floor(this.next * this.step - this.halfWidth) - 1);
    if (keepFrom > this.base) {
      this.buf = this.buf.slice(keepFrom - this.base);
      this.base = keepFrom;
    }
    return Int16Array.from(out);
  }

  private at(t: number): number {
    const from = Math.max(Math.ceil(t - this.halfWidth), 0);
    const to = Math.min(Math.floor(t + this.halfWidth), this.total - 1);
    let sum = 0;
    for (let k = from; k <= to; k++) {
      sum += (this.buf[k - this.base] ?? 0) * kernel(this.fc * (t - k));
    }
    return sum * this.fc;
  }
}

/** The whole of `pcm` at `toRate`, mono. */
export function resamplePcm(pcm: Pcm, toRate: number): Int16Array {
  const r = new Resampler(pcm.sampleRate, toRate, pcm.channels);
  const head = r.push(pcm.samples);
  const tail = r.flush();
  const out = new Int16Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
