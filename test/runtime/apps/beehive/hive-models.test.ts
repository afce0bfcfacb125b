import { afterEach, describe, expect, it } from 'vitest';
import { TestHive as HiveInference } from '../../../support/test-hive.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { OnnxRuntimeNodeBackend } from '../../../../models/inference/onnxruntime-node-backend.js';
import type { Reading } from '../../../../devices/device.js';

const HOUR = 3_600_000;
const reading = (channel: string, value: number, t: number): Reading => ({ channel, value, unit: '', t });

describe('HiveInference thermal window', () => {
  let inference: HiveInference | undefined;
  afterEach(async () => { await inference?.stop(); });

  it('restores readings from before a restart, older than the live ones, within the window', async () => {
    const config = parseConfig({ models: { thermal: { window: '24h', minReadings: 3 }, sound: { enabled: false } } }).models;
    inference = new HiveInference(config, new OnnxRuntimeNodeBackend());
    await inference.start();
    const now = 100 * HOUR;
    // A live reading after the restart...
    inference.onReading(reading('humidity', 55, now - 1000));
    inference.onReading(reading('temperature', 34.8, now));
    // ...and what the disk held: one too old, three in the window, one newer than the live one.
    const stored = [
      reading('humidity', 50, now - 30 * HOUR), reading('temperature', 20, now - 30 * HOUR),
      reading('humidity', 52, now - 3 * HOUR), reading('temperature', 34.5, now - 3 * HOUR),
      reading('temperature', 34.6, now - 2 * HOUR), reading('temperature', 34.7, now - HOUR),
      reading('temperature', 99, now + 1),
    ];
    expect(inference.restoreWindow(stored, now)).toBe(3);
    expect(inference.windowSize).toBe(4);
    const output = await inference.runThermal(now);
    expect(output?.features.temp_min).toBeCloseTo(34.5, 3);
    expect(output?.features.temp_max).toBeCloseTo(34.8, 3);
    const p = output?.probabilities.strong_colony;
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThanOrEqual(1);
  });

  it('does not run the thermal model before it has enough readings', async () => {
    const config = parseConfig({ models: { thermal: { minReadings: 5 }, sound: { enabled: false } } }).models;
    inference = new HiveInference(config, new OnnxRuntimeNodeBackend());
    await inference.start();
    inference.onReading(reading('humidity', 50, 1));
    inference.onReading(reading('temperature', 34, 2));
    expect(await inference.runThermal(3)).toBeUndefined();
  });
});
