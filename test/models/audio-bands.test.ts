import { describe, expect, it } from 'vitest';
import {
  AUDIO_BANDS_HZ,
  AUDIO_FEATURE_NAMES,
  AUDIO_FRAME_SIZE,
  AUDIO_SAMPLE_RATE,
  audioFeatures,
  parseOsbhDat,
} from '../../models/features/audio-bands.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { expectApiaryError, readClip } from './helpers.js';

function sine(freqHz: number, amplitude: number, length: number, offset = 0): Float32Array {
  return Float32Array.from({ length }, (_, i) => offset + amplitude * Math.sin((2 * Math.PI * freqHz * i) / AUDIO_SAMPLE_RATE));
}

describe('audioFeatures', () => {
  it('names one feature per band plus rms_dbfs', () => {
    expect(AUDIO_FEATURE_NAMES).toEqual([...AUDIO_BANDS_HZ.map(([lo, hi]) => `band_${lo}_${hi}`), 'rms_dbfs']);
    expect(Object.keys(audioFeatures(sine(150, 0.1, AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE))).toEqual(AUDIO_FEATURE_NAMES);
  });

  it('puts a pure 250 Hz sine in the 200-300 Hz band', () => {
    const f = audioFeatures(sine(250, 0.5, 4410), AUDIO_SAMPLE_RATE);
    const target = f.band_200_300 ?? Number.NaN;
    for (const name of AUDIO_FEATURE_NAMES.filter((n) => n.startsWith('band_') && n !== 'band_200_300')) {
      // At least 1000x more mean power than any other band.
      expect(target - (f[name] ?? Number.POSITIVE_INFINITY)).toBeGreaterThan(3);
    }
    // RMS of a sine is amplitude / sqrt(2): 0.5 -> -9.03 dBFS.
    expect(f.rms_dbfs).toBeCloseTo(20 * Math.log10(0.5 / Math.SQRT2), 1);
  });

  it('moves the energy when the tone moves (450 Hz -> 400-500 band)', () => {
    const f = audioFeatures(sine(450, 0.5, AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE);
    const bands = AUDIO_FEATURE_NAMES.filter((n) => n.startsWith('band_'));
    const loudest = bands.reduce((best, n) => ((f[n] ?? -Infinity) > (f[best] ?? -Infinity) ? n : best));
    expect(loudest).toBe('band_400_500');
  });

  it('ignores a DC offset in the band energies', () => {
    const clean = audioFeatures(sine(250, 0.2, AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE);
    const offset = audioFeatures(sine(250, 0.2, AUDIO_FRAME_SIZE, 0.4), AUDIO_SAMPLE_RATE);
    // Without the per-frame mean removal a 0.4 offset would add several decades of power here.
    expect(offset.band_0_100).toBeCloseTo(clean.band_0_100 ?? Number.NaN, 3);
  });

  it('gives finite features for silence', () => {
    const f = audioFeatures(new Float32Array(AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE);
    for (const name of AUDIO_FEATURE_NAMES) expect(Number.isFinite(f[name])).toBe(true);
    expect(f.rms_dbfs).toBe(-200);
  });

  it('is deterministic on a real clip', () => {
    expect(audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE)).toEqual(audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE));
  });

  it('rejects a wrong sample rate', async () => {
    const err = await expectApiaryError(() => audioFeatures(sine(250, 0.5, 4410), 44100), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain('44100');
    expect(err.message).toContain('2205');
    expect(err.hint).toMatch(/resample/);
  });

  it('rejects input shorter than one frame', async () => {
    const err = await expectApiaryError(() => audioFeatures(sine(250, 0.5, AUDIO_FRAME_SIZE - 1), AUDIO_SAMPLE_RATE), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain(String(AUDIO_FRAME_SIZE - 1));
  });

  it('rejects non-finite samples', async () => {
    const samples = sine(250, 0.5, AUDIO_FRAME_SIZE);
    samples[100] = Number.NaN;
    const err = await expectApiaryError(() => audioFeatures(samples, AUDIO_SAMPLE_RATE), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain('#100');
  });
});

describe('parseOsbhDat', () => {
  it('parses the shipped clips', () => {
    const clip = readClip('Active.dat');
    expect(clip.length).toBe(4410);
    expect(clip[0]).toBeCloseTo(-0.09556, 6);
  });

  it('accepts CRLF line ends and a trailing newline', () => {
    expect(Array.from(parseOsbhDat('0.5\r\n-0.25\r\n1e-3\n'))).toEqual([0.5, -0.25, Math.fround(1e-3)]);
  });

  it.each([
    ['a blank line', '0.1\n\n0.2\n', 2],
    ['text', '0.1\nabc\n', 2],
    ['hex', '0x1\n', 1],
    ['an out-of-range sample', '0.1\n2.0\n', 2],
    ['NaN', 'NaN\n', 1],
  ])('rejects %s and names the line', async (_what, text, line) => {
    const err = await expectApiaryError(() => parseOsbhDat(text, 'clip.dat'), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain(`clip.dat line ${line}`);
  });

  it('rejects an empty file', async () => {
    await expectApiaryError(() => parseOsbhDat('\n'), ErrorCodes.MODEL_INPUT_INVALID);
  });
});
