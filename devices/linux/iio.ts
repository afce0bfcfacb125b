/**
 * A sensor with a kernel IIO driver (BME280 through `dtoverlay=i2c-sensor,bme280`,
 * which the bmp280 driver serves; also BMP280, DHT11/22, ...). Units from the
 * kernel's Documentation/ABI/testing/sysfs-bus-iio: in_temp_input is in
 * milli degrees Celsius, in_humidityrelative_input in milli percent, and
 * in_pressure_input in kilopascal. A driver that offers only _raw gives
 * (raw + offset) * scale in the same units (same ABI file). The device is
 * found by its `name` attribute: iio:deviceN numbers follow probe order.
 */
import path from 'node:path';
import type { LinuxSensorConfig } from './config.js';
import { sensorChannel } from './config.js';
import { channelSpec, checkRange, type LinuxSensor, type SensorValue, type Sysfs } from './sysfs.js';

export const IIO_DEVICES = 'sys/bus/iio/devices';
/** BME280 datasheet (BST-BME280-DS002), Table 1, operating ranges: -40..85 °C, 0..100 %RH, 300..1100 hPa. */
const DEFAULT_RANGES = { temperature: [-40, 85], humidity: [0, 100], pressure: [300, 1100] } as const;
const ATTRIBUTES = { temperature: 'in_temp', humidity: 'in_humidityrelative', pressure: 'in_pressure' } as const;
/** ABI unit to the published unit: m°C to °C, m% to %, kPa to hPa. */
const TO_UNIT = { temperature: 1 / 1000, humidity: 1 / 1000, pressure: 10 } as const;

type IioConfig = Extract<LinuxSensorConfig, { driver: 'iio' }>;

export class Iio implements LinuxSensor {
  readonly channels;
  readonly intervalMs: number;
  readonly describe: string;
  private readonly channel: string;

  constructor(private readonly sysfs: Sysfs, private readonly config: IioConfig) {
    this.channel = sensorChannel(config);
    this.channels = [channelSpec(this.channel, config.quantity, config.label)];
    this.intervalMs = config.interval;
    this.describe = `iio ${config.name} ${config.quantity}`;
  }

  async read(): Promise<readonly SensorValue[]> {
    const { name, index, quantity } = this.config;
    const dir = await this.sysfs.findByName(IIO_DEVICES, 'iio:device', name, index, 'IIO');
    const abi = await readProcessed(this.sysfs, dir, ATTRIBUTES[quantity]);
    const value = checkRange(`${name} ${quantity}`, abi * TO_UNIT[quantity], this.config.range ?? DEFAULT_RANGES[quantity], this.channels[0]?.unit ?? '');
    return [{ channel: this.channel, value }];
  }
}

/** `<base>_input`, or `(<base>_raw + <base>_offset) * <base>_scale` where only raw is offered (sysfs-bus-iio). */
export async function readProcessed(sysfs: Sysfs, dir: string, base: string): Promise<number> {
  if (await sysfs.exists(path.join(dir, `${base}_input`))) return sysfs.number(path.join(dir, `${base}_input`));
  const raw = await sysfs.number(path.join(dir, `${base}_raw`));
  const offset = await sysfs.number(path.join(dir, `${base}_offset`)).catch(() => 0);
  const scale = await sysfs.number(path.join(dir, `${base}_scale`)).catch(() => 1);
  return (raw + offset) * scale;
}
