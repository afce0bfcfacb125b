/**
 * The `device.linux` section: each mistake is refused with the field and
 * the fix named, and a minimal config gets sensible defaults.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../runtime/config/load-config.js';

function problems(device: unknown): string {
  try {
    parseConfig({ device });
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return 'accepted';
}

describe('device.linux config', () => {
  it('fills defaults: channel names per driver, intervals, calibration, ALSA rates', () => {
    const linux = parseConfig({ device: { kind: 'linux', linux: { sensors: [{ driver: 'ds18b20' }, { driver: 'hwmon', quantity: 'humidity' }, { driver: 'hx711-iio' }], audio: { driver: 'alsa' }, button: { line: 17 } } } }).device.linux;
    expect(linux?.root).toBe('/');
    expect(linux?.sensors.map((s) => [s.driver, s.channel, s.interval])).toEqual([['ds18b20', undefined, 60_000], ['hwmon', undefined, 60_000], ['hx711-iio', undefined, 60_000]]);
    expect(linux?.audio).toMatchObject({ device: 'default', captureRate: 44_100, sampleRate: 2205, format: 'S16_LE', interval: 10_000, command: 'arecord' });
    expect(linux?.button).toMatchObject({ chip: 'gpiochip0', line: 17, activeLow: true, bias: 'pull-up', debounce: 30, name: 'button' });
  });

  it('refuses an unknown driver, naming the ones there are', () => {
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'dht22' }] } })).toMatch(/field "device\.linux\.sensors\.0\.driver": got "dht22"; expected "driver" to be one of "ds18b20", "hwmon", "iio", "hx711-iio", "nau7802" or "serial-line"/);
  });

  it('refuses an unknown field in a sensor (strict), and a field of another driver', () => {
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'ds18b20', pin: 4 }] } })).toMatch(/unknown field "pin" in "device\.linux\.sensors\.0"/);
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'hwmon', quantity: 'pressure' }] } })).toMatch(/sensors\.0\.quantity.*expected "temperature" or "humidity"/);
  });

  it('refuses two sensors on one channel, and compensation from a channel nobody feeds', () => {
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'ds18b20' }, { driver: 'hwmon', quantity: 'temperature' }] } }))
      .toMatch(/device\.linux\.sensors\.1\.channel.*channel "temperature" is also read by sensors\[0\]: give each sensor its own "channel"/);
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'nau7802', compensation: { channel: 'brood', kgPerDegree: 0.01 } }] } }))
      .toMatch(/sensors\.0\.compensation\.channel.*no sensor feeds channel "brood": name one of "weight"/);
  });

  it('refuses a bad DS18B20 id, a rate that does not divide, a bad GPIO chip, and kind linux with nothing to read', () => {
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'ds18b20', id: '10-abc' }] } })).toMatch(/sensors\.0\.id.*ls \/sys\/bus\/w1\/devices/);
    expect(problems({ kind: 'linux', linux: { audio: { driver: 'alsa', captureRate: 48000 } } })).toMatch(/audio\.captureRate.*whole multiple of sampleRate/);
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'ds18b20' }], button: { chip: 'gpio0', line: 4 } } })).toMatch(/button\.chip.*gpiodetect/);
    expect(problems({ kind: 'linux' })).toMatch(/device\.linux.*needs device\.linux\.sensors/);
    expect(problems({ kind: 'linux', linux: { sensors: [{ driver: 'serial-line', port: '/dev/ttyUSB0', key: 'a', pattern: '(\\d+)' }] } })).toMatch(/give either "key" or "pattern"/);
  });
});
