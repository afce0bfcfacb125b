/**
 * Builds the two shipped models into `<outDir>/{hive-sound,hive-thermal}/`:
 * `model.onnx` plus `manifest.json` (with the file's sha256). hive-thermal is
 * trained on the UrBAN data by train-hive-thermal.ts (`npm run train` runs
 * that alone), which also writes its `metrics.json`.
 *
 *   npm run models:build        # writes models/hive-sound and models/hive-thermal
 *
 * Deterministic: a seeded PRNG, full-batch gradient descent in a fixed order
 * and a byte-stable ONNX writer, so the same inputs give byte-identical files
 * on the same platform and a changed hash means a changed model. After
 * writing, each model is loaded back through the real registry path
 * (hash check + onnxruntime-node) and compared with the TypeScript maths.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../runtime/package-root.js';
import { AUDIO_BANDS_HZ, AUDIO_FEATURE_NAMES, AUDIO_FRAME_SIZE, AUDIO_SAMPLE_RATE, audioFeatures, parseOsbhDat } from '../features/audio-bands.js';
import type { ManifestFeature } from '../registry/manifest.js';
import { evaluateDense, mulberry32, roundSig, standardise, trainSoftmaxRegression } from './softmax-regression.js';
import { trainHiveThermal } from './train-hive-thermal.js';
import { writeModel, type BuiltModel } from './write-model.js';

export type { BuiltModel } from './write-model.js';
const TRAIN_HOP = 256;
const TRAIN_SEED = 0x5eed_b33;
const TRAIN_OPTIONS = { learningRate: 0.1, epochs: 3000, l2: 1e-3 } as const;
const OSBH_SOURCE =
  'github.com/hiveeyes/osbh-audioanalyzer commit df4caf7810c1afb3f4c2074d80d163fbace2183f, resources/2205 ' +
  '(MIT, Copyright (c) 2016 SparkFun Electronics, Inc.; recordings by OSBH contributors)';

/** Clip file -> label; the simulator plays the same clips for modes normal / pre-swarm / swarm. */
const SOUND_CLIPS = [
  { file: 'Active.dat', label: 'normal' },
  { file: 'Pre-Swarm.dat', label: 'pre-swarm' },
  { file: 'Swarm.dat', label: 'swarm' },
] as const;


export interface BuildOptions {
  /** Directory with the OSBH clips; defaults to devices/sim/data/osbh-audio in the package. */
  readonly audioDir?: string;
  /** Directory with the UrBAN CSVs; defaults to models/training/data/urban-beehive in the package. */
  readonly thermalDataDir?: string;
  readonly log?: (line: string) => void;
}

export async function buildModels(outDir: string, options: BuildOptions = {}): Promise<BuiltModel[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const audioDir = options.audioDir ?? path.join(packageRoot(), 'devices', 'sim', 'data', 'osbh-audio');
  const sound = await buildHiveSound(outDir, audioDir, log);
  const thermal = await trainHiveThermal(outDir, { log, ...(options.thermalDataDir ? { dataDir: options.thermalDataDir } : {}) });
  const built = [sound, thermal.model];
  log(`done: ${built.map((m) => `${m.name} ${m.sha256.slice(0, 12)}`).join(', ')}`);
  return built;
}

async function buildHiveSound(outDir: string, audioDir: string, log: (line: string) => void): Promise<BuiltModel> {
  log(`hive-sound: reading clips from ${audioDir}`);
  const labels = SOUND_CLIPS.map((c) => c.label);
  const rows: number[][] = [];
  const targets: number[] = [];
  const clipRows: number[][] = [];
  for (const [classIndex, clip] of SOUND_CLIPS.entries()) {
    const file = path.join(audioDir, clip.file);
    const samples = parseOsbhDat(await readFile(file, 'utf8'), file);
    let frames = 0;
    for (let start = 0; start + AUDIO_FRAME_SIZE <= samples.length; start += TRAIN_HOP, frames++) {
      const f = audioFeatures(samples.subarray(start, start + AUDIO_FRAME_SIZE), AUDIO_SAMPLE_RATE);
      rows.push(AUDIO_FEATURE_NAMES.map((name) => f[name] ?? Number.NaN));
      targets.push(classIndex);
    }
    const whole = audioFeatures(samples, AUDIO_SAMPLE_RATE);
    clipRows.push(AUDIO_FEATURE_NAMES.map((name) => whole[name] ?? Number.NaN));
    log(`  ${clip.file} -> ${clip.label}: ${samples.length} samples, ${frames} frames`);
  }

  const { mean, std } = standardise(rows);
  const norm = (row: readonly number[]) => row.map((v, j) => (v - (mean[j] ?? 0)) / (std[j] ?? 1));
  log(`  training softmax regression on ${rows.length} frames x ${AUDIO_FEATURE_NAMES.length} features`);
  const model = trainSoftmaxRegression(rows.map(norm), targets, labels.length, {
    ...TRAIN_OPTIONS,
    random: mulberry32(TRAIN_SEED),
    onEpoch: (epoch, loss) => {
      if (epoch % 500 === 0) log(`    epoch ${epoch}: cross-entropy ${loss.toFixed(5)}`);
    },
  });
  const argmax = (p: readonly number[]) => p.indexOf(Math.max(...p));
  const correct = rows.filter((row, i) => argmax(evaluateDense(model.weights, model.bias, norm(row))) === targets[i]).length;
  const clipCorrect = clipRows.filter((row, i) => argmax(evaluateDense(model.weights, model.bias, norm(row))) === i).length;
  log(`  train accuracy ${correct}/${rows.length} frames, ${clipCorrect}/${clipRows.length} whole clips`);

  const features: ManifestFeature[] = AUDIO_FEATURE_NAMES.map((name, j) => {
    const band = AUDIO_BANDS_HZ[j];
    return {
      name,
      unit: band ? 'log10(power)' : 'dBFS',
      description: band
        ? `log10 of the mean power in ${band[0]}-${band[1]} Hz (Hann, ${AUDIO_FRAME_SIZE}-sample frames at ${AUDIO_SAMPLE_RATE} Hz; models/features/audio-bands.ts)`
        : 'RMS level of the analysed samples in dB relative to full scale (amplitude 1)',
      mean: mean[j] ?? 0,
      std: std[j] ?? 1,
    };
  });
  return writeModel(outDir, log, {
    name: 'hive-sound',
    description: 'Colony sound state (normal / pre-swarm / swarm) from band energies of 2205 Hz in-hive audio. Pipeline model.',
    features,
    labels,
    weights: model.weights,
    bias: model.bias,
    training: {
      method: `softmax regression, full-batch gradient descent (learning rate ${TRAIN_OPTIONS.learningRate}, ${TRAIN_OPTIONS.epochs} epochs, L2 ${TRAIN_OPTIONS.l2}, mulberry32 seed 0x${TRAIN_SEED.toString(16)})`,
      data:
        `devices/sim/data/osbh-audio/{Active,Pre-Swarm,Swarm}.dat labelled normal/pre-swarm/swarm; ${AUDIO_FRAME_SIZE}-sample frames, hop ${TRAIN_HOP}. ` +
        `Source: ${OSBH_SOURCE}.`,
      notes:
        'The training data are three recordings of 2 s, one per label, each from a single hive and microphone. ' +
        'This is a pipeline model that exercises feature extraction, inference and plumbing; it learns the recordings, ' +
        'not the colony state, and its metrics are measured on its own training frames. It is not an accuracy claim.',
      metrics: {
        train_accuracy: roundSig(correct / rows.length),
        train_frames: rows.length,
        train_clip_accuracy: roundSig(clipCorrect / clipRows.length),
        final_cross_entropy: roundSig(model.loss),
      },
    },
    check: clipRows.map((row) => ({ features: toRecord(AUDIO_FEATURE_NAMES, row), expected: evaluateDense(model.weights, model.bias, norm(row)) })),
  });
}

function toRecord(names: readonly string[], values: readonly number[]): Record<string, number> {
  return Object.fromEntries(names.map((name, i) => [name, values[i] ?? Number.NaN]));
}

const invokedAs = process.argv[1];
if (invokedAs && import.meta.url === pathToFileURL(path.resolve(invokedAs)).href) {
  const outDir = path.join(packageRoot(), 'models');
  buildModels(outDir).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
