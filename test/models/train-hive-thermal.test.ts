import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadManifest } from '../../models/registry/manifest.js';
import { parseTrainArgs, THERMAL_LABEL, trainHiveThermal } from '../../models/training/train-hive-thermal.js';
import type { ThermalMetricsFile } from '../../models/training/train-hive-thermal.js';
import { readInspections, readSensorData } from '../../models/training/urban-data.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { expectApiaryError, HIVE_THERMAL_DIR, REPO_ROOT, withTempDir } from './helpers.js';

const FILES = ['model.onnx', 'manifest.json', 'metrics.json'];
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('npm run train (hive-thermal from the UrBAN data)', () => {
  it('reproduces the shipped model, manifest and metrics byte for byte from the same seed', async () => {
    await withTempDir(async (out) => {
      const lines: string[] = [];
      const result = await trainHiveThermal(out, { log: (l) => lines.push(l) });
      for (const file of FILES) {
        const made = await readFile(path.join(out, 'hive-thermal', file));
        const shipped = await readFile(path.join(HIVE_THERMAL_DIR, file));
        expect(made.equals(shipped), `models/hive-thermal/${file} is not what \`npm run train\` makes: re-run it`).toBe(true);
      }
      const shippedOnnx = await readFile(path.join(HIVE_THERMAL_DIR, 'model.onnx'));
      expect(result.model.sha256).toBe(sha256(shippedOnnx));
      expect(lines.some((l) => l.includes('leave-one-hive-out'))).toBe(true);
      expect(lines.some((l) => l.includes('verified hive-thermal through onnxruntime-node'))).toBe(true);
    });
  });

  it('records its leave-one-hive-out metrics in the manifest, the same as metrics.json', async () => {
    const manifest = await loadManifest(HIVE_THERMAL_DIR);
    const metrics = JSON.parse(await readFile(path.join(HIVE_THERMAL_DIR, 'metrics.json'), 'utf8')) as ThermalMetricsFile;
    const m = manifest.training.metrics ?? {};
    expect(manifest.outputs[0]?.labels).toEqual([THERMAL_LABEL]);
    expect(manifest.training.method).toContain('logistic regression');
    expect(m.loho_balanced_accuracy).toBe(metrics.pooled.model.balanced_accuracy);
    expect(m.loho_auc).toBe(metrics.pooled.model.auc);
    expect(m.loho_log_loss).toBe(metrics.pooled.model.log_loss);
    expect(m.baseline_majority_balanced_accuracy).toBe(metrics.pooled.baseline_majority.balanced_accuracy);
    expect(m.baseline_threshold_balanced_accuracy).toBe(metrics.pooled.baseline_threshold.balanced_accuracy);
    expect(m.ablation_outside_gap_balanced_accuracy).toBe(metrics.pooled.ablation_with_outside_gap.balanced_accuracy);
    expect(m.windows).toBe(metrics.data.windows);
    expect(m.hives).toBe(7);
    // Seven folds, one per hive, and the held-out windows add up to all windows.
    expect(metrics.folds.map((f) => f.held_out_hive)).toEqual(metrics.data.hives);
    expect(metrics.folds.reduce((a, f) => a + f.n, 0)).toBe(metrics.data.windows);
    // The manifest lists exactly the features the node computes.
    expect(manifest.inputs[0]?.features.map((f) => f.name)).toEqual(metrics.features);
    // The majority class is the floor the model has to beat.
    expect(metrics.pooled.baseline_majority.balanced_accuracy).toBe(0.5);
    expect(m.loho_balanced_accuracy).toBeGreaterThan(0.5);
  });

  it('deduplicates near-duplicate timestamps (hives 3629 and 3692)', async () => {
    const sensor = await readSensorData(path.join(REPO_ROOT, 'models', 'training', 'data', 'urban-beehive'));
    expect([...sensor.keys()]).toEqual([3627, 3629, 3631, 3690, 3691, 3692, 3693]);
    for (const readings of sensor.values()) {
      for (let i = 1; i < readings.length; i++) expect((readings[i]?.t ?? 0) - (readings[i - 1]?.t ?? 0)).toBeGreaterThanOrEqual(5 * 60_000);
    }
    expect(sensor.get(3692)?.length).toBeLessThan(10_000); // 17,432 raw rows
  });

  it('names the file and line of a malformed CSV row', async () => {
    await withTempDir(async (dir) => {
      await writeFile(
        path.join(dir, 'sensor_2021.csv'),
        'Date,Tag number,temperature,humidity\n2021-06-19 00:04:58+00:00,3629,26.24,35.45\n2021-06-19 00:19:58+00:00,3629,warm,35.92\n',
      );
      const err = await expectApiaryError(() => readSensorData(dir), ErrorCodes.TRAINING_DATA_INVALID);
      expect(err.message).toContain(`${path.join(dir, 'sensor_2021.csv')}:3: temperature is "warm"`);

      await writeFile(path.join(dir, 'inspections_2021.csv'), 'Date,Tag number,Queen status\n2021-06-22,3629,QR\n');
      const header = await expectApiaryError(() => readInspections(dir), ErrorCodes.TRAINING_DATA_INVALID);
      expect(header.message).toContain('inspections_2021.csv:1: header is');

      const missing = path.join(dir, 'nowhere');
      await mkdir(missing);
      const notFound = await expectApiaryError(() => trainHiveThermal(path.join(dir, 'out'), { dataDir: missing, log: () => undefined }), ErrorCodes.TRAINING_DATA_INVALID);
      expect(notFound.message).toContain(path.join(missing, 'sensor_2021.csv'));
    });
  });

  it('parses --data and --out, and refuses anything else', () => {
    expect(parseTrainArgs(['--data', 'd', '--out', 'o'])).toEqual({ dataDir: path.resolve('d'), outDir: path.resolve('o') });
    expect(() => parseTrainArgs(['--data'])).toThrow(/incomplete argument "--data"/);
    expect(() => parseTrainArgs(['--seed', '1'])).toThrow(/unknown/);
  });
});
