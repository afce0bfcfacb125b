/**
 * The hive-sound pipeline end to end on the six labelled OSBH clips: strict
 * parsing, 1 s frames as the node's microphone delivers them, band features,
 * the shipped ONNX model through onnxruntime-node, and the node's own
 * HiveInference path. A pipeline test, not an accuracy claim: six clips from
 * different hives and microphones cannot measure a sound classifier (see
 * test/fixtures/osbh-audio-snippets/README.md).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../devices/device.js';
import { AUDIO_FEATURE_NAMES, AUDIO_SAMPLE_RATE, parseOsbhDat } from '../../models/features/audio-bands.js';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { SOUND_MODEL } from '../../runtime/apps/beehive/hive-models.js';
import { TestHive as HiveInference } from '../support/test-hive.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import { HIVE_SOUND_DIR, OSBH_AUDIO_DIR, REPO_ROOT } from './helpers.js';

const SNIPPETS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'osbh-audio-snippets');
/** The six clips: file, OSBH label, sample count from the dataset README, and the model label it was trained as (if any). */
const CLIPS = [
  { dir: OSBH_AUDIO_DIR, file: 'Active.dat', osbh: 'active', samples: 4_410, trainedAs: 'normal' },
  { dir: OSBH_AUDIO_DIR, file: 'Pre-Swarm.dat', osbh: 'pre-swarm', samples: 4_410, trainedAs: 'pre-swarm' },
  { dir: OSBH_AUDIO_DIR, file: 'Swarm.dat', osbh: 'swarm', samples: 4_410, trainedAs: 'swarm' },
  { dir: SNIPPETS_DIR, file: 'Peter_Active.dat', osbh: 'active', samples: 33_280, trainedAs: undefined },
  { dir: SNIPPETS_DIR, file: 'Peter_Hum.dat', osbh: 'hum', samples: 33_280, trainedAs: undefined },
  { dir: SNIPPETS_DIR, file: 'Peter_Swarm.dat', osbh: 'swarm', samples: 32_768, trainedAs: undefined },
] as const;
const LABELS = ['normal', 'pre-swarm', 'swarm'];

/** Cuts a clip into the 1 s frames the node's microphone source delivers (sensors.sound.frameSeconds: 1). */
function framesOf(samples: Float32Array, seconds = 1): AudioFrame[] {
  const length = Math.round(seconds * AUDIO_SAMPLE_RATE);
  const frames: AudioFrame[] = [];
  for (let start = 0; start + length <= samples.length; start += length) {
    frames.push({ t: (start / AUDIO_SAMPLE_RATE) * 1000, sampleRate: AUDIO_SAMPLE_RATE, samples: samples.slice(start, start + length) });
  }
  return frames;
}

describe('hive-sound pipeline on the six OSBH clips', () => {
  let inference: HiveInference;
  let shippedSha256: string;
  const clips = new Map<string, Float32Array>();

  beforeAll(async () => {
    inference = new HiveInference(parseConfig({ models: { thermal: { enabled: false } } }).models, new OnnxRuntimeNodeBackend());
    await inference.start();
    shippedSha256 = (JSON.parse(await readFile(path.join(HIVE_SOUND_DIR, 'manifest.json'), 'utf8')) as { sha256: string }).sha256;
    for (const clip of CLIPS) {
      const file = path.join(clip.dir, clip.file);
      clips.set(clip.file, parseOsbhDat(await readFile(file, 'utf8'), file));
    }
  });

  afterAll(async () => {
    await inference.stop();
  });

  it.each(CLIPS)('$file ($osbh): every 1 s frame gives finite features, a sound level and a probability for each class', async (clip) => {
    const samples = clips.get(clip.file);
    expect(samples?.length).toBe(clip.samples);
    const frames = framesOf(samples ?? new Float32Array());
    expect(frames.length).toBe(Math.floor(clip.samples / AUDIO_SAMPLE_RATE));
    for (const frame of frames) {
      const { soundLevel, output } = await inference.onAudio(frame);
      expect(soundLevel).toMatchObject({ channel: 'sound_level', unit: 'dBFS', t: frame.t });
      expect(soundLevel.value).toBeGreaterThan(-60);
      expect(soundLevel.value).toBeLessThan(0);
      if (!output) throw new Error('the sound model is enabled, so every frame has an output');
      expect(output).toMatchObject({ model: SOUND_MODEL, sha256: shippedSha256, t: frame.t });
      expect(Object.keys(output.features)).toEqual(AUDIO_FEATURE_NAMES);
      for (const value of Object.values(output.features)) expect(Number.isFinite(value)).toBe(true);
      expect(Object.keys(output.probabilities)).toEqual(LABELS);
      const sum = Object.values(output.probabilities).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 5);
      expect(LABELS).toContain(output.label);
    }
  });

  it('gives the same output and input hash for the same audio, every time', async () => {
    for (const clip of CLIPS) {
      const [frame] = framesOf(clips.get(clip.file) ?? new Float32Array());
      if (!frame) throw new Error(`${clip.file} has no whole frame`);
      const a = await inference.onAudio(frame);
      const b = await inference.onAudio({ ...frame, samples: Float32Array.from(frame.samples) });
      expect(b.output?.probabilities).toEqual(a.output?.probabilities);
      expect(b.output?.inputHash).toBe(a.output?.inputHash);
    }
  });

  it('gives each clip it was trained on its label, frame by frame (the features at inference are the features it learned from)', async () => {
    for (const clip of CLIPS.filter((c) => c.trainedAs !== undefined)) {
      for (const frame of framesOf(clips.get(clip.file) ?? new Float32Array())) {
        expect((await inference.onAudio(frame)).output?.label, clip.file).toBe(clip.trainedAs);
      }
    }
  });

  it('refuses audio that the features were not specified for, with the reason', async () => {
    const [frame] = framesOf(clips.get('Active.dat') ?? new Float32Array());
    if (!frame) throw new Error('Active.dat has no whole frame');
    await expect(inference.onAudio({ ...frame, sampleRate: 44_100 })).rejects.toThrow(/sample rate is 44100 Hz, expected 2205 Hz/);
    await expect(inference.onAudio({ ...frame, samples: frame.samples.slice(0, 1000) })).rejects.toThrow(/1000 samples, expected at least 2048/);
  });
});
