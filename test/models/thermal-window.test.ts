import { describe, expect, it } from 'vitest';
import { THERMAL_FEATURE_NAMES, thermalFeatures } from '../../models/features/thermal-window.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { expectApiaryError } from './helpers.js';

const t0 = Date.UTC(2025, 5, 1);
const reading = (i: number, temperature: number, humidity = 50) => ({ t: t0 + i * 60_000, temperature, humidity });

describe('thermalFeatures', () => {
  it('computes the documented features', () => {
    const f = thermalFeatures([reading(0, 32), reading(1, 34), reading(2, 36, 70), reading(3, 38, 70)]);
    expect(Object.keys(f)).toEqual(THERMAL_FEATURE_NAMES);
    expect(f.temp_mean).toBe(35);
    expect(f.temp_std).toBeCloseTo(Math.sqrt(5), 12); // population std of 32, 34, 36, 38
    expect(f.temp_min).toBe(32);
    expect(f.temp_max).toBe(38);
    expect(f.frac_in_brood_band).toBe(0.5); // 34 and 36 are within 32.5..36.5
    expect(f.humidity_mean).toBe(60);
    expect(f.humidity_std).toBe(10);
    expect(f.temp_diurnal_amplitude).toBe(0); // all four readings fall in the same hour
  });

  it('measures the day/night swing from hour-of-day means, whatever the sampling interval', () => {
    const day = (stepMin: number) =>
      Array.from({ length: (24 * 60) / stepMin }, (_, i) => {
        const hour = Math.floor((i * stepMin) / 60);
        return { t: t0 + i * stepMin * 60_000, temperature: hour < 12 ? 34 : 36, humidity: 50 };
      });
    expect(thermalFeatures(day(1)).temp_diurnal_amplitude).toBe(2);
    expect(thermalFeatures(day(15)).temp_diurnal_amplitude).toBe(2);
  });

  it('counts the band edges 32.5 and 36.5 °C as inside', () => {
    expect(thermalFeatures([reading(0, 32.5), reading(1, 36.5), reading(2, 36.6)]).frac_in_brood_band).toBeCloseTo(2 / 3, 12);
  });

  it('rejects an empty window', async () => {
    await expectApiaryError(() => thermalFeatures([]), ErrorCodes.MODEL_INPUT_INVALID);
  });

  it('rejects non-finite values, naming the reading and field', async () => {
    const err = await expectApiaryError(() => thermalFeatures([reading(0, 34), reading(1, Number.NaN)]), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.message).toContain('#1');
    expect(err.message).toContain('temperature');
    await expectApiaryError(() => thermalFeatures([{ t: t0, temperature: 34, humidity: Number.POSITIVE_INFINITY }]), ErrorCodes.MODEL_INPUT_INVALID);
  });

  it('rejects unsorted times', async () => {
    const err = await expectApiaryError(() => thermalFeatures([reading(1, 34), reading(0, 34)]), ErrorCodes.MODEL_INPUT_INVALID);
    expect(err.hint).toMatch(/sort/);
  });
});
