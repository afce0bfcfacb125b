/**
 * Trains the shipped hive-thermal model from real data: the UrBAN beehive
 * sensor and inspection CSVs (Montréal, 2021; see
 * models/training/data/urban-beehive/README.md).
 *
 *   npm run train                       # reads the in-repo copy, writes models/hive-thermal/
 *   npm run train -- --data <dir> --out <dir>
 *
 * Label (the one the data support best): `strong_colony`, i.e. the
 * beekeepers counted at least STRONG_FRAMES frames of bees (all boxes) at the
 * nearest inspection of that hive, at most LABEL_RADIUS_DAYS days away. Frames
 * of bees are recorded at every inspection; frames of brood (FoBrood) at only
 * a handful, and queen status (queen seen / not seen) is a weak label.
 *
 * Examples: one window per hive and local day (00:00-24:00 EDT) of in-hive
 * readings, with readings from 30 min before an inspection until 3 h after it
 * masked out (the hive was open), and at least MIN_READINGS left. Features:
 * models/features/thermal-window.ts, the same code the node runs.
 *
 * Evaluation: leave-one-hive-out over the hives, against a majority-class
 * baseline and the best single-feature threshold (both fitted on the training
 * hives of each fold), plus an ablation that adds the inside-outside
 * temperature gap from the weather file (not shippable: a node has no outside
 * sensor). The shipped model is then trained on every hive. Everything is
 * deterministic: fixed order, full-batch gradient descent, mulberry32 seed.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeError } from '../../runtime/errors.js';
import { packageRoot } from '../../runtime/package-root.js';
import { BROOD_BAND_C, THERMAL_FEATURE_NAMES, thermalFeatures } from '../features/thermal-window.js';
import type { ManifestFeature } from '../registry/manifest.js';
import { evaluateDense, mulberry32, roundSig, standardise, trainLogisticRegression } from './softmax-regression.js';
import { readInspections, readSensorData, readWeather, TIME } from './urban-data.js';
import type { Inspection, SensorReading, WeatherHour } from './urban-data.js';
import { writeModel, type BuiltModel } from './write-model.js';
import { binaryMetrics, fitThreshold, predictThreshold, type BinaryMetrics } from './binary-evaluation.js';

export const THERMAL_MODEL_VERSION = '0.2.0';
export const THERMAL_LABEL = 'strong_colony';
/** Frames of bees (summed over boxes) at or above which a colony counts as strong: two full deep boxes. */
export const STRONG_FRAMES = 20;
export const LABEL_RADIUS_DAYS = 3;
export const MIN_READINGS = 48;
export const MASK_BEFORE_MS = 30 * TIME.MINUTE_MS;
export const MASK_AFTER_MS = 3 * TIME.HOUR_MS;
/** Inspections without open/close times: mask this local span of the day. */
const MASK_UNTIMED_LOCAL_H = { from: 12, to: 21 } as const;
const DAY_MS = 24 * TIME.HOUR_MS;
export const THERMAL_TRAIN_SEED = 0x7e_2021;
export const THERMAL_TRAIN_OPTIONS = { learningRate: 0.1, epochs: 1500, l2: 1e-2 } as const;
const SOURCE =
  'UrBAN (github.com/mahsa-abdollahi/UrBAN, commit 521238648c56a1b9888207c3f054561ad77a17d8; CC BY 4.0): ' +
  'Abdollahi, M., Zhu, Y., Guimarães, H., Coallier, N., Maucourt, S., Giovenazzo, P., Falk, T. (2024). ' +
  'UrBAN: Urban Beehive Acoustics and PheNotyping Dataset. https://doi.org/10.20383/103.0972';

export function defaultDataDir(): string {
  return path.join(packageRoot(), 'models', 'training', 'data', 'urban-beehive');
}

export interface ThermalExample {
  readonly hive: number;
  /** Local midnight that starts the window (ms since the epoch). */
  readonly dayStart: number;
  readonly readings: number;
  readonly features: Record<string, number>;
  /** In-hive mean minus outside mean over the same day; undefined without weather for that day. */
  readonly outsideGap: number | undefined;
  readonly framesOfBees: number;
  readonly label: 0 | 1;
  /** The inspection the label comes from. */
  readonly inspection: string;
}

function isMasked(t: number, inspections: readonly Inspection[]): boolean {
  for (const i of inspections) {
    if (i.open !== undefined && i.close !== undefined) {
      if (t >= i.open - MASK_BEFORE_MS && t < i.close + MASK_AFTER_MS) return true;
    } else if (t >= i.dayStart + MASK_UNTIMED_LOCAL_H.from * TIME.HOUR_MS && t < i.dayStart + MASK_UNTIMED_LOCAL_H.to * TIME.HOUR_MS) {
      return true;
    }
  }
  return false;
}

/** One labelled window per hive and local day within LABEL_RADIUS_DAYS of an inspection of that hive. */
export function buildExamples(
  sensor: ReadonlyMap<number, readonly SensorReading[]>,
  inspections: readonly Inspection[],
  weather: readonly WeatherHour[] = [],
): ThermalExample[] {
  const outside = new Map(weather.map((w) => [w.t, w.temperature]));
  const examples: ThermalExample[] = [];
  for (const [hive, readings] of sensor) {
    const own = inspections.filter((i) => i.hive === hive).slice().sort((a, b) => a.dayStart - b.dayStart);
    if (own.length === 0 || readings.length === 0) continue;
    // Readings by local day.
    const byDay = new Map<number, SensorReading[]>();
    const firstDay = own[0]?.dayStart ?? 0;
    for (const r of readings) {
      if (isMasked(r.t, own)) continue;
      const day = firstDay + Math.floor((r.t - firstDay) / DAY_MS) * DAY_MS;
      const list = byDay.get(day) ?? [];
      list.push(r);
      byDay.set(day, list);
    }
    for (const day of [...byDay.keys()].sort((a, b) => a - b)) {
      // Nearest inspection of this hive; on a tie the earlier one.
      let nearest: Inspection | undefined;
      let distance = Number.POSITIVE_INFINITY;
      for (const i of own) {
        const d = Math.abs(Math.round((day - i.dayStart) / DAY_MS));
        if (d < distance) {
          nearest = i;
          distance = d;
        }
      }
      const window = byDay.get(day) ?? [];
      if (!nearest || distance > LABEL_RADIUS_DAYS || window.length < MIN_READINGS) continue;
      const features = thermalFeatures(window);
      let outsideSum = 0;
      let outsideHours = 0;
      for (let h = 0; h < 24; h++) {
        const temperature = outside.get(day + h * TIME.HOUR_MS);
        if (temperature !== undefined) {
          outsideSum += temperature;
          outsideHours++;
        }
      }
      examples.push({
        hive,
        dayStart: day,
        readings: window.length,
        features,
        outsideGap: outsideHours >= 20 ? (features.temp_mean ?? 0) - outsideSum / outsideHours : undefined,
        framesOfBees: nearest.framesOfBees,
        label: nearest.framesOfBees >= STRONG_FRAMES ? 1 : 0,
        inspection: `${nearest.date} (inspections_2021.csv line ${nearest.line})`,
      });
    }
  }
  return examples;
}

// ---------------------------------------------------------------- models

interface FittedLogistic {
  mean: number[];
  std: number[];
  weights: number[][];
  bias: number[];
  loss: number;
}

function fitLogistic(rows: readonly (readonly number[])[], labels: readonly (0 | 1)[]): FittedLogistic {
  const { mean, std } = standardise(rows);
  const norm = rows.map((r) => r.map((v, j) => (v - (mean[j] ?? 0)) / (std[j] ?? 1)));
  const model = trainLogisticRegression(norm, labels, { ...THERMAL_TRAIN_OPTIONS, random: mulberry32(THERMAL_TRAIN_SEED) });
  return { mean, std, weights: model.weights, bias: model.bias, loss: model.loss };
}

function predictLogistic(model: FittedLogistic, row: readonly number[]): number {
  return evaluateDense(model.weights, model.bias, row.map((v, j) => (v - (model.mean[j] ?? 0)) / (model.std[j] ?? 1)))[0] ?? Number.NaN;
}

// ---------------------------------------------------------------- training run

export interface TrainOptions {
  /** Directory with sensor_2021.csv, inspections_2021.csv and weather_2021_2022.csv. */
  readonly dataDir?: string;
  readonly log?: (line: string) => void;
}

export interface TrainResult {
  readonly model: BuiltModel;
  readonly metrics: ThermalMetricsFile;
}

interface FoldResult {
  held_out_hive: number;
  n: number;
  positives: number;
  model: BinaryMetrics;
  baseline_majority: BinaryMetrics & { predicts: 0 | 1 };
  baseline_threshold: BinaryMetrics & { rule: string };
  ablation_with_outside_gap: BinaryMetrics | null;
}

export interface ThermalMetricsFile {
  model: string;
  version: string;
  command: string;
  label: { name: string; definition: string };
  features: readonly string[];
  data: {
    source: string;
    hives: number[];
    windows: number;
    positives: number;
    windows_per_hive: Record<string, { windows: number; positives: number }>;
    masking: string;
    deduplication: string;
  };
  evaluation: string;
  folds: FoldResult[];
  pooled: {
    model: BinaryMetrics;
    baseline_majority: BinaryMetrics;
    baseline_threshold: BinaryMetrics;
    ablation_with_outside_gap: BinaryMetrics & { note: string };
    mean_fold_balanced_accuracy: { model: number; baseline_majority: number; baseline_threshold: number };
  };
  final_model: { trained_on_windows: number; train: BinaryMetrics; weighted_cross_entropy: number; weights: Record<string, number>; bias: number };
}

const FEATURE_INFO: Record<string, { unit: string; description: string }> = {
  temp_mean: { unit: '°C', description: 'mean in-hive temperature over the window' },
  temp_std: { unit: '°C', description: 'population standard deviation of in-hive temperature over the window' },
  temp_min: { unit: '°C', description: 'lowest in-hive temperature in the window' },
  temp_max: { unit: '°C', description: 'highest in-hive temperature in the window' },
  frac_in_brood_band: { unit: 'fraction', description: `share of readings within ${BROOD_BAND_C.min}..${BROOD_BAND_C.max} °C (the brood-nest band)` },
  humidity_mean: { unit: '%RH', description: 'mean in-hive relative humidity over the window' },
  humidity_std: { unit: '%RH', description: 'population standard deviation of in-hive relative humidity over the window' },
  temp_diurnal_amplitude: { unit: '°C', description: 'highest minus lowest hour-of-day mean temperature in the window (day/night swing)' },
};

export async function trainHiveThermal(outDir: string, options: TrainOptions = {}): Promise<TrainResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dataDir = options.dataDir ?? defaultDataDir();
  log(`hive-thermal: training from ${dataDir}`);
  const sensor = await readSensorData(dataDir);
  const inspections = await readInspections(dataDir);
  const weather = await readWeather(dataDir);
  log(`  ${[...sensor.values()].reduce((a, r) => a + r.length, 0)} readings of ${sensor.size} hives after deduplication, ${inspections.length} inspections, ${weather.length} weather hours`);

  const examples = buildExamples(sensor, inspections, weather);
  const hives = [...new Set(examples.map((e) => e.hive))].sort((a, b) => a - b);
  const names = THERMAL_FEATURE_NAMES;
  const rowOf = (e: ThermalExample) => names.map((n) => e.features[n] ?? Number.NaN);
  const positives = examples.filter((e) => e.label === 1).length;
  log(`  ${examples.length} day windows (${positives} ${THERMAL_LABEL}) from ${hives.length} hives; label: frames of bees >= ${STRONG_FRAMES} at the nearest inspection within ${LABEL_RADIUS_DAYS} days`);
  if (hives.length < 3 || positives === 0 || positives === examples.length) {
    throw new Error(`hive-thermal: too little labelled data in ${dataDir} (${examples.length} windows, ${positives} positive, ${hives.length} hives); need both classes and at least 3 hives`);
  }

  // Leave-one-hive-out.
  const folds: FoldResult[] = [];
  const oof = { labels: [] as (0 | 1)[], model: [] as number[], majority: [] as number[], threshold: [] as number[] };
  const ablation = { labels: [] as (0 | 1)[], p: [] as number[] };
  const withGap = (e: ThermalExample) => [...rowOf(e), e.outsideGap ?? Number.NaN];
  for (const hive of hives) {
    const train = examples.filter((e) => e.hive !== hive);
    const test = examples.filter((e) => e.hive === hive);
    const trainLabels = train.map((e) => e.label);
    const testLabels = test.map((e) => e.label);
    const model = fitLogistic(train.map(rowOf), trainLabels);
    const pModel = test.map((e) => predictLogistic(model, rowOf(e)));
    const trainPositiveRate = trainLabels.filter((y) => y === 1).length / trainLabels.length;
    const majority: 0 | 1 = trainPositiveRate >= 0.5 ? 1 : 0;
    // The majority baseline predicts its class, with the training prior as its probability (for log-loss).
    const pMajority = test.map(() => trainPositiveRate);
    const threshold = fitThreshold(names, train.map(rowOf), trainLabels);
    const pThreshold = test.map((e) => predictThreshold(threshold, names, rowOf(e)));
    const trainGap = train.filter((e) => e.outsideGap !== undefined);
    const testGap = test.filter((e) => e.outsideGap !== undefined);
    let ablationMetrics: BinaryMetrics | null = null;
    if (testGap.length > 0) {
      const gapModel = fitLogistic(trainGap.map(withGap), trainGap.map((e) => e.label));
      const pGap = testGap.map((e) => predictLogistic(gapModel, withGap(e)));
      ablationMetrics = binaryMetrics(testGap.map((e) => e.label), pGap);
      ablation.labels.push(...testGap.map((e) => e.label));
      ablation.p.push(...pGap);
    }
    const fold: FoldResult = {
      held_out_hive: hive,
      n: test.length,
      positives: testLabels.filter((y) => y === 1).length,
      model: binaryMetrics(testLabels, pModel),
      baseline_majority: { ...binaryMetrics(testLabels, pMajority), predicts: majority },
      baseline_threshold: {
        ...binaryMetrics(testLabels, pThreshold),
        rule: `${threshold.feature} ${threshold.direction === 1 ? '>=' : '<'} ${roundSig(threshold.threshold, 4)}`,
      },
      ablation_with_outside_gap: ablationMetrics,
    };
    folds.push(fold);
    oof.labels.push(...testLabels);
    oof.model.push(...pModel);
    oof.majority.push(...pMajority);
    oof.threshold.push(...pThreshold);
    log(
      `  fold: hive ${hive} held out (${fold.n} windows, ${fold.positives} positive): balanced accuracy model ${fold.model.balanced_accuracy}, ` +
        `majority ${fold.baseline_majority.balanced_accuracy}, threshold [${fold.baseline_threshold.rule}] ${fold.baseline_threshold.balanced_accuracy}`,
    );
  }
  const meanOf = (xs: number[]) => roundSig(xs.reduce((a, b) => a + b, 0) / xs.length, 4);
  const pooled = {
    model: binaryMetrics(oof.labels, oof.model),
    baseline_majority: binaryMetrics(oof.labels, oof.majority),
    baseline_threshold: binaryMetrics(oof.labels, oof.threshold),
    ablation_with_outside_gap: {
      ...binaryMetrics(ablation.labels, ablation.p),
      note: 'in-hive features plus inside_outside_gap (in-hive mean minus outside mean from the weather file); evaluation only, NOT shipped: a node has no outside-temperature sensor',
    },
    mean_fold_balanced_accuracy: {
      model: meanOf(folds.map((f) => f.model.balanced_accuracy)),
      baseline_majority: meanOf(folds.map((f) => f.baseline_majority.balanced_accuracy)),
      baseline_threshold: meanOf(folds.map((f) => f.baseline_threshold.balanced_accuracy)),
    },
  };
  log(
    `  leave-one-hive-out, pooled: model balanced accuracy ${pooled.model.balanced_accuracy}, AUC ${pooled.model.auc}, log-loss ${pooled.model.log_loss}; ` +
      `majority ${pooled.baseline_majority.balanced_accuracy}; best single threshold ${pooled.baseline_threshold.balanced_accuracy}; ` +
      `with outside gap (ablation) ${pooled.ablation_with_outside_gap.balanced_accuracy}`,
  );

  // The shipped model: every hive.
  const allRows = examples.map(rowOf);
  const allLabels = examples.map((e) => e.label);
  const final = fitLogistic(allRows, allLabels);
  const trainMetrics = binaryMetrics(allLabels, allRows.map((r) => predictLogistic(final, r)));
  log(`  final model on all ${examples.length} windows: train balanced accuracy ${trainMetrics.balanced_accuracy}, weighted cross-entropy ${roundSig(final.loss, 4)}`);

  const perHive: Record<string, { windows: number; positives: number }> = {};
  for (const hive of hives) {
    const own = examples.filter((e) => e.hive === hive);
    perHive[String(hive)] = { windows: own.length, positives: own.filter((e) => e.label === 1).length };
  }
  const labelDefinition =
    `1 when the total frames of bees (Fob 1st + 2nd + 3rd) at the nearest inspection of the same hive, at most ${LABEL_RADIUS_DAYS} days ` +
    `from the window's day, is >= ${STRONG_FRAMES}; else 0`;
  const metrics: ThermalMetricsFile = {
    model: 'hive-thermal',
    version: THERMAL_MODEL_VERSION,
    command: 'npm run train',
    label: { name: THERMAL_LABEL, definition: labelDefinition },
    features: names,
    data: {
      source: SOURCE,
      hives,
      windows: examples.length,
      positives,
      windows_per_hive: perHive,
      masking: `readings from ${MASK_BEFORE_MS / TIME.MINUTE_MS} min before an inspection's Open time to ${MASK_AFTER_MS / TIME.HOUR_MS} h after its Close time (local EDT) are dropped; an inspection without times drops ${MASK_UNTIMED_LOCAL_H.from}:00-${MASK_UNTIMED_LOCAL_H.to}:00 local; a window needs >= ${MIN_READINGS} readings left`,
      deduplication: 'per hive, sorted by time; a reading less than 5 min after the previous kept one is dropped',
    },
    evaluation:
      'leave-one-hive-out: each hive in turn is held out; the logistic model, the majority class and the best single-feature threshold ' +
      '(by balanced accuracy) are fitted on the other hives and scored on the held-out hive. "pooled" scores all held-out predictions together. ' +
      'Predictions are positive at p >= 0.5. Balanced accuracy is the mean recall over the classes present. The threshold baseline is a hard ' +
      'classifier (p is 0 or 1, clipped to 1e-7 for log-loss); the majority baseline uses the training prior as p, so its pooled AUC only ' +
      'reflects how the prior moves between folds (it is constant within a fold) and means nothing.',
    folds,
    pooled,
    final_model: {
      trained_on_windows: examples.length,
      train: trainMetrics,
      weighted_cross_entropy: roundSig(final.loss, 4),
      weights: Object.fromEntries(names.map((n, j) => [n, roundSig(final.weights[j]?.[0] ?? 0, 4)])),
      bias: roundSig(final.bias[0] ?? 0, 4),
    },
  };

  const features: ManifestFeature[] = names.map((name, j) => {
    const info = FEATURE_INFO[name];
    if (!info) throw new Error(`hive-thermal: no unit/description for feature ${name}`);
    return { name, ...info, mean: final.mean[j] ?? 0, std: final.std[j] ?? 1 };
  });
  const checkRows = [examples.find((e) => e.label === 1), examples.find((e) => e.label === 0)].filter((e): e is ThermalExample => e !== undefined);
  const manifestMetrics: Record<string, number> = {
    loho_balanced_accuracy: pooled.model.balanced_accuracy,
    loho_accuracy: pooled.model.accuracy,
    loho_auc: pooled.model.auc ?? Number.NaN,
    loho_log_loss: pooled.model.log_loss,
    loho_mean_fold_balanced_accuracy: pooled.mean_fold_balanced_accuracy.model,
    baseline_majority_balanced_accuracy: pooled.baseline_majority.balanced_accuracy,
    baseline_majority_accuracy: pooled.baseline_majority.accuracy,
    baseline_majority_log_loss: pooled.baseline_majority.log_loss,
    baseline_threshold_balanced_accuracy: pooled.baseline_threshold.balanced_accuracy,
    baseline_threshold_accuracy: pooled.baseline_threshold.accuracy,
    ablation_outside_gap_balanced_accuracy: pooled.ablation_with_outside_gap.balanced_accuracy,
    ablation_outside_gap_auc: pooled.ablation_with_outside_gap.auc ?? Number.NaN,
    windows: examples.length,
    positives,
    hives: hives.length,
  };
  const built = await writeModel(outDir, log, {
    name: 'hive-thermal',
    version: THERMAL_MODEL_VERSION,
    description:
      `Is this a strong colony (>= ${STRONG_FRAMES} frames of bees)? Logistic regression on a window (24 h) of in-hive temperature and humidity, ` +
      'trained on 7 UrBAN hives (Montréal, 2021).',
    features,
    labels: [THERMAL_LABEL],
    weights: final.weights,
    bias: final.bias,
    training: {
      method:
        `logistic regression, class-balanced, full-batch gradient descent (learning rate ${THERMAL_TRAIN_OPTIONS.learningRate}, ` +
        `${THERMAL_TRAIN_OPTIONS.epochs} epochs, L2 ${THERMAL_TRAIN_OPTIONS.l2}, mulberry32 seed 0x${THERMAL_TRAIN_SEED.toString(16)}); ` +
        'evaluated leave-one-hive-out (metrics.json), shipped model trained on all hives; `npm run train`',
      data:
        `models/training/data/urban-beehive/{sensor_2021,inspections_2021}.csv: ${examples.length} day windows (local days, EDT) of hives ` +
        `${hives.join(', ')}, 2021-06 to 2021-10, each within ${LABEL_RADIUS_DAYS} days of an inspection. ${metrics.data.masking}. ` +
        `${metrics.data.deduplication}. Source: ${SOURCE}.`,
      notes:
        `Label ${THERMAL_LABEL}: ${labelDefinition}. Frames of bees are chosen because they are the one colony measure recorded at every ` +
        'inspection; FoBrood (frames of brood) is filled in at few inspections, and queen status (QR = queen seen, QNS = not seen) is ' +
        'weak: QNS mostly marks the October inspections and does not mean queenless. Weaknesses: the label is a coarse count by eye, ' +
        'held for up to 3 days either side of the inspection; it is strongly tied to the season (colonies shrink in autumn, when brood ' +
        'rearing and the brood-nest temperature also drop), so the model partly learns "summer vs autumn"; one hive (3629) is weak all ' +
        'season yet held brood-nest temperature in July-August; where the sensor sits relative to the brood nest is not recorded. ' +
        `Only 7 hives, one apiary, one city, one season; leave-one-hive-out balanced accuracy ${pooled.model.balanced_accuracy} ` +
        `(AUC ${pooled.model.auc}) against ${pooled.baseline_majority.balanced_accuracy} for the majority class and ` +
        `${pooled.baseline_threshold.balanced_accuracy} for the best single-feature threshold. An ablation adding the inside-outside ` +
        `temperature gap scores ${pooled.ablation_with_outside_gap.balanced_accuracy}; it is not shipped because a node has no outside sensor. ` +
        'Use the output as a hint to look into the hive, not as a diagnosis.',
      metrics: manifestMetrics,
    },
    check: checkRows.map((e) => ({ features: e.features, expected: [predictLogistic(final, rowOf(e))] })),
    extraFiles: { 'metrics.json': `${JSON.stringify(metrics, null, 2)}\n` },
  });
  return { model: built, metrics };
}

function usage(): string {
  return [
    'usage: npm run train -- [--data <dir>] [--out <dir>]',
    '  --data <dir>  directory with the UrBAN CSVs (default: models/training/data/urban-beehive)',
    '  --out <dir>   models directory to write hive-thermal/ into (default: models/)',
  ].join('\n');
}

export function parseTrainArgs(argv: readonly string[]): { dataDir?: string; outDir?: string; help?: boolean } {
  const out: { dataDir?: string; outDir?: string; help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--help' || arg === '-h') out.help = true;
    else if ((arg === '--data' || arg === '--out') && value !== undefined && !value.startsWith('--')) {
      if (arg === '--data') out.dataDir = path.resolve(value);
      else out.outDir = path.resolve(value);
      i++;
    } else throw new Error(`unknown or incomplete argument "${arg ?? ''}"\n${usage()}`);
  }
  return out;
}

const invokedAs = process.argv[1];
if (invokedAs && import.meta.url === pathToFileURL(path.resolve(invokedAs)).href) {
  const run = async () => {
    const args = parseTrainArgs(process.argv.slice(2));
    if (args.help) {
      console.log(usage());
      return;
    }
    const started = Date.now();
    const result = await trainHiveThermal(args.outDir ?? path.join(packageRoot(), 'models'), args.dataDir ? { dataDir: args.dataDir } : {});
    console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: hive-thermal ${result.model.sha256.slice(0, 12)} in ${result.model.dir}`);
  };
  run().catch((err: unknown) => {
    console.error(`train: ${describeError(err)}`);
    process.exitCode = 1;
  });
}
