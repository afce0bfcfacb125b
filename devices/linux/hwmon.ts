/**
 * A temperature or humidity sensor with a kernel hwmon driver (SHT3x through
 * `dtoverlay=i2c-sensor,sht3x`, and SHT4x, HTU21, ...). Units from the kernel's
 * Documentation/ABI/testing/sysfs-class-hwmon: temp[1-*]_input is in
 * millidegrees Celsius, humidity[1-*]_input in milli-percent RH. The device
 * is found by its `name` attribute, since hwmonN numbers follow probe order.
 * Reading the attribute makes the sht3x driver measure over I2C: an unplugged
 * sensor gives a read error (EIO), counted as missing.
 */
import path from 'node:path';
import type { LinuxSensorConfig } from './config.js';
import { sensorChannel } from './config.js';
import { channelSpec, checkRange, type LinuxSensor, type SensorValue, type Sysfs } from './sysfs.js';

const HWMON = 'sys/class/hwmon';
/** SHT3x-DIS datasheet, Table 1 and 2: -40..125 °C, 0..100 %RH. */
const DEFAULT_RANGES = { temperature: [-40, 125], humidity: [0, 100] } as const;
const ATTRIBUTES = { temperature: 'temp1_input', humidity: 'humidity1_input' } as const;

type HwmonConfig = Extract<LinuxSensorConfig, { driver: 'hwmon' }>;

export class Hwmon implements LinuxSensor {
  readonly channels;
  readonly intervalMs: number;
  readonly describe: string;
  private readonly channel: string;

  constructor(private readonly sysfs: Sysfs, private readonly config: HwmonConfig) {
    this.channel = sensorChannel(config);
    this.channels = [channelSpec(this.channel, config.quantity, config.label)];
    this.intervalMs = config.interval;
    this.describe = `hwmon ${config.name} ${config.quantity}`;
  }

  async read(): Promise<readonly SensorValue[]> {
    const { name, index, quantity } = this.config;
    const dir = await this.sysfs.findByName(HWMON, 'hwmon', name, index, 'hwmon');
    const milli = await this.sysfs.number(path.join(dir, ATTRIBUTES[quantity]));
    const value = checkRange(`${name} ${quantity}`, milli / 1000, this.config.range ?? DEFAULT_RANGES[quantity], this.channels[0]?.unit ?? '');
    return [{ channel: this.channel, value }];
  }
}
