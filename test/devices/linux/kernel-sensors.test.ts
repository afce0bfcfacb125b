/**
 * hwmon (SHT3x), IIO (BME280) and load cells (HX711, NAU7802 through their
 * IIO drivers) against a fake sysfs tree: devices found by name, ABI units
 * converted, absurd values and unplugged devices counted and never
 * published, temperature compensation of the weight.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LinuxDevice } from '../../../devices/linux/linux-device.js';
import { median } from '../../../devices/linux/load-cell.js';
import { FakeBoard, linuxDevice, waitFor } from '../../support/fake-board.js';

let board: FakeBoard;
let device: LinuxDevice | undefined;
beforeEach(async () => { board = await FakeBoard.create(); });
afterEach(async () => { await device?.close(); device = undefined; await board.remove(); });

function open(sensors: Record<string, unknown>[]) {
  const made = linuxDevice(board, sensors);
  device = made.device;
  return made;
}

describe('hwmon and IIO sensors', () => {
  it('finds the SHT3x and the BME280 by name, whatever their number, in the published units', async () => {
    await board.hwmon(0, 'cpu_thermal', { temp1_input: 51000 });
    await board.hwmon(3, 'sht3x', { temp1_input: 34512, humidity1_input: 61250 });
    await board.iio(0, 'mcp3008', {});
    await board.iio(1, 'bme280', { in_temp_input: 21040, in_humidityrelative_input: 48123, in_pressure_input: '101.325' });
    const { device, readings, last } = open([
      { driver: 'hwmon', quantity: 'temperature' },
      { driver: 'hwmon', quantity: 'humidity' },
      { driver: 'iio', name: 'bme280', quantity: 'temperature', channel: 'outside_temp' },
      { driver: 'iio', name: 'bme280', quantity: 'humidity', channel: 'outside_humidity' },
      { driver: 'iio', name: 'bme280', quantity: 'pressure' },
    ]);
    expect(device.channels.map((c) => `${c.name} ${c.unit}`)).toEqual(['temperature °C', 'humidity %', 'outside_temp °C', 'outside_humidity %', 'pressure hPa']);
    await device.open();
    await waitFor(() => new Set(readings.map((r) => r.channel)).size === 5, 'all five channels');
    expect(last('temperature')?.value).toBe(34.512);
    expect(last('humidity')?.value).toBe(61.25);
    expect(last('outside_temp')?.value).toBe(21.04);
    expect(last('outside_humidity')?.value).toBe(48.12);
    expect(last('pressure')?.value).toBe(1013.25);
  });

  it('uses (raw + offset) * scale where a driver offers no _input', async () => {
    await board.iio(0, 'bmp280', { in_temp_raw: 2000, in_temp_offset: 104, in_temp_scale: 10 });
    const { device, readings } = open([{ driver: 'iio', name: 'bmp280', quantity: 'temperature' }]);
    await device.open();
    await waitFor(() => readings.length > 0, 'a reading');
    expect(readings[0]?.value).toBe(21.04);
  });

  it('counts absurd values, unreadable attributes and vanished devices without publishing, and resumes', async () => {
    await board.hwmon(1, 'sht3x', { temp1_input: 30000, humidity1_input: 130000 });
    const { device, readings, warnings, last } = open([{ driver: 'hwmon', quantity: 'temperature' }, { driver: 'hwmon', quantity: 'humidity' }]);
    await device.open();
    await waitFor(() => (device.stats()['invalid.humidity'] ?? 0) >= 2, 'absurd humidity counted');
    expect(readings.filter((r) => r.channel === 'humidity')).toHaveLength(0);
    expect(warnings.some((w) => /130 % is outside 0..100/.test(w.message))).toBe(true);

    await board.write('sys/class/hwmon/hwmon1/humidity1_input', 'garbage\n');
    await waitFor(() => (device.stats()['invalid.humidity'] ?? 0) >= 4, 'garbage counted');
    await board.unplug('sys/class/hwmon/hwmon1');
    await waitFor(() => (device.stats()['missing.temperature'] ?? 0) >= 2, 'the unplugged sensor counted');
    expect(warnings.some((w) => w.message === 'temperature: no hwmon device named "sht3x" under /sys/class/hwmon')).toBe(true);
    const count = readings.length;
    await board.hwmon(2, 'sht3x', { temp1_input: 29000, humidity1_input: 55000 }); // re-probed under a new number
    await waitFor(() => last('humidity')?.value === 55, 'humidity back');
    expect(readings.slice(count).some((r) => r.channel === 'temperature' && r.value === 29)).toBe(true);
    expect(device.stats()['recovered.temperature']).toBe(1);
  });
});

describe('load cells', () => {
  it('HX711: offset-binary raw to signed counts, calibrated; saturated codes refused', async () => {
    await board.iio(0, 'hx711', { in_voltage0_raw: 0x800000 + 800_000, in_voltage_scale: '0.000001' });
    const { device, readings } = open([{ driver: 'hx711-iio', kgPerCount: 0.00005, offsetKg: -2, samples: 3 }]);
    await device.open();
    await waitFor(() => readings.length > 0, 'a weight');
    expect(readings[0]).toMatchObject({ channel: 'weight', unit: 'kg', value: 38 });
    await board.write('sys/bus/iio/devices/iio:device0/in_voltage0_raw', String(0xffffff));
    await waitFor(() => (device.stats()['invalid.weight'] ?? 0) >= 2, 'saturation counted');
    const count = readings.length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(readings.length).toBeLessThanOrEqual(count + 1); // at most one read that began before the change
  });

  it('NAU7802: signed raw counts; an absurd weight is refused', async () => {
    await board.iio(2, 'nau7802', { in_voltage0_raw: -100_000, in_voltage1_raw: 5 });
    const { device, readings, warnings } = open([{ driver: 'nau7802', kgPerCount: -0.0004, offsetKg: 0, rangeKg: [-10, 100] }]);
    await device.open();
    await waitFor(() => readings.length > 0, 'a weight');
    expect(readings[0]?.value).toBe(40);
    await board.write('sys/bus/iio/devices/iio:device2/in_voltage0_raw', '-1000000');
    await waitFor(() => (device.stats()['invalid.weight'] ?? 0) >= 1, 'absurd weight counted');
    expect(warnings.some((w) => /400 kg is outside -10..100 kg/.test(w.message))).toBe(true);
  });

  it('compensates the weight for temperature from another channel, and says when it cannot', async () => {
    await board.iio(0, 'hx711', { in_voltage0_raw: 0x800000 + 1_000_000 });
    await board.hwmon(0, 'sht3x', { temp1_input: 30000 });
    const { device, readings, warnings, last } = open([
      { driver: 'hwmon', quantity: 'temperature', interval: '100ms' },
      { driver: 'hx711-iio', kgPerCount: 0.00004, compensation: { channel: 'temperature', kgPerDegree: 0.02, referenceC: 20, maxAge: '1s' } },
    ]);
    await device.open();
    // 40 kg read at 30 °C: the cell reads 0.02 kg/°C high, so 40 - 0.2.
    await waitFor(() => last('weight')?.value === 39.8, 'a compensated weight');
    await board.unplug('sys/class/hwmon/hwmon0');
    await waitFor(() => last('weight')?.value === 40, 'an uncompensated weight once the temperature is stale');
    expect(device.stats()['uncompensated.weight']).toBeGreaterThan(0);
    expect(warnings.some((w) => /without temperature compensation/.test(w.message))).toBe(true);
    expect(readings.every((r) => r.channel !== 'weight' || r.value === 39.8 || r.value === 40)).toBe(true);
  });

  it('takes the median, so one outlier cannot move the weight', () => {
    expect(median([10, 10.1, 9.9, 500, 10])).toBe(10);
    expect(median([1, 2, 3, 100])).toBe(2.5);
  });
});
