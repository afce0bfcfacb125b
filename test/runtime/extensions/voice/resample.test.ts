import { describe, expect, it } from 'vitest';
import { ApiaryError } from '../../../../runtime/errors.js';
import { resamplePcm, Resampler, toMono } from '../../../../runtime/extensions/voice/resample.js';

/** Power at `freq` (Goertzel), normalised by length. */
function goertzel(x: Int16Array, rate: number, freq: number): number {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const v of x) {
    const s0 = v + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length);
}

function sine(rate: number, freq: number, seconds: number, amplitude = 10_000, channels = 1): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

const rms = (x: Int16Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

describe('resampling to 16 kHz', () => {
  it('keeps a 1 kHz tone at 1 kHz going from 22,050 Hz to 16 kHz, with its level', () => {
    const out = resamplePcm({ sampleRate: 22_050, channels: 1, samples: sine(22_050, 1_000, 1) }, 16_000);
    expect(Math.abs(out.length - 16_000)).toBeLessThanOrEqual(1);
    // The peak of a scan from 200 Hz to 7.8 kHz in 50 Hz steps is at 1 kHz.
    const scan = Array.from({ length: 153 }, (_, i) => 200 + i * 50).map((f) => ({ f, p: goertzel(out, 16_000, f) }));
    const peak = scan.reduce((a, b) => (b.p > a.p ? b : a));
    expect(peak.f).toBe(1_000);
    // A wrong rate would move it: the same samples read as 22,050 Hz would peak near 725 Hz.
    expect(goertzel(out, 16_000, 1_000)).toBeGreaterThan(100 * goertzel(out, 16_000, 1_378));
    const middle = out.subarray(1_000, 15_000);
    expect(rms(middle)).toBeGreaterThan(10_000 / Math.SQRT2 * 0.97);
    expect(rms(middle)).toBeLessThan(10_000 / Math.SQRT2 * 1.03);
  });

  it('filters what 16 kHz cannot hold instead of aliasing it', () => {
    // 10 kHz is over the 8 kHz Nyquist; without the low-pass it would come back as a 6 kHz tone.
    const out = resamplePcm({ sampleRate: 44_100, channels: 1, samples: sine(44_100, 10_000, 0.5) }, 16_000);
    expect(rms(out.subarray(500, 7_500))).toBeLessThan(10_000 * 0.01);
    const kept = resamplePcm({ sampleRate: 44_100, channels: 1, samples: sine(44_100, 3_000, 0.5) }, 16_000);
    expect(rms(kept.subarray(500, 7_500))).toBeGreaterThan(10_000 / Math.SQRT2 * 0.97);
  });

  it('gives the same samples streamed in odd-sized chunks as in one piece, stereo mixed to mono', () => {
    const stereo = sine(48_000, 440, 0.3, 8_000, 2);
    const whole = resamplePcm({ sampleRate: 48_000, channels: 2, samples: stereo }, 16_000);
    const r = new Resampler(48_000, 16_000, 2);
    const parts: number[] = [];
    for (let at = 0, step = 333; at < stereo.length; at += step, step = step === 333 ? 1_001 : 333) parts.push(...r.push(stereo.subarray(at, at + step)));
    parts.push(...r.flush());
    expect(Int16Array.from(parts)).toEqual(whole);
    expect(toMono(Int16Array.from([100, 300, -50, -150]), 2)).toEqual(Float32Array.from([200, -100]));
  });

  it('passes 16 kHz mono through untouched, and upsamples 8 kHz', () => {
    const x = sine(16_000, 500, 0.1);
    expect(resamplePcm({ sampleRate: 16_000, channels: 1, samples: x }, 16_000)).toEqual(x);
    const up = resamplePcm({ sampleRate: 8_000, channels: 1, samples: sine(8_000, 1_000, 0.5) }, 16_000);
    expect(Math.abs(up.length - 8_000)).toBeLessThanOrEqual(1);
    expect(goertzel(up, 16_000, 1_000)).toBeGreaterThan(100 * goertzel(up, 16_000, 2_000));
  });

  it('rejects rates it cannot work with, naming them', () => {
    expect(() => new Resampler(0, 16_000)).toThrow(ApiaryError);
    expect(() => new Resampler(22_050, 16_000.5)).toThrow(/toRate 16000.5/);
  });
});
