/**
 * A load cell through a 24-bit bridge ADC served by a kernel IIO driver:
 * - HX711 (`hx711-iio`): drivers/iio/adc/hx711.c, a GPIO device (compatible
 *   "avia,hx711"); the kernel bit-bangs its clock with preemption off, which
 *   userspace cannot do reliably. in_voltage0_raw is channel A (gain 128 or
 *   64), in_voltage1_raw channel B (gain 32); the raw value is the 24-bit
 *   two's-complement output with its sign bit flipped (offset binary), so
 *   0x800000 is zero input and 0 / 0xFFFFFF are the saturation codes.
 * - NAU7802 (`nau7802`): drivers/iio/adc/nau7802.c, an I2C device (compatible
 *   "nuvoton,nau7802"). Talking to it from Node over /dev/i2c-N would need the
 *   I2C_SLAVE ioctl, which Node cannot issue without a native addon, so the
 *   kernel driver is used: in_voltage0_raw / in_voltage1_raw, signed 24-bit.
 * Both become signed counts. A reading is the median of `samples` raw reads
 * (one bad read cannot move it), calibrated (kg = offsetKg + counts *
 * kgPerCount), and compensated for temperature when configured.
 */
import path from 'node:path';
import type { LinuxSensorConfig } from './config.js';
import { sensorChannel } from './config.js';
import { IIO_DEVICES } from './iio.js';
import { channelSpec, checkRange, SensorFault, type LinuxSensor, type SensorContext, type SensorValue, type Sysfs } from './sysfs.js';

const FULL_SCALE = 0x800000;

type LoadCellConfig = Extract<LinuxSensorConfig, { driver: 'hx711-iio' | 'nau7802' }>;

export class LoadCell implements LinuxSensor {
  readonly channels;
  readonly intervalMs: number;
  readonly describe: string;
  private readonly channel: string;
  private readonly iioName: string;

  constructor(private readonly sysfs: Sysfs, private readonly config: LoadCellConfig) {
    this.channel = sensorChannel(config);
    this.channels = [channelSpec(this.channel, 'weight', config.label)];
    this.intervalMs = config.interval;
    this.iioName = config.driver === 'hx711-iio' ? 'hx711' : 'nau7802';
    this.describe = `${this.iioName} load cell`;
  }

  async read(context: SensorContext): Promise<readonly SensorValue[]> {
    const { config } = this;
    const dir = await this.sysfs.findByName(IIO_DEVICES, 'iio:device', this.iioName, config.index, 'IIO');
    const file = path.join(dir, `in_voltage${config.adcChannel}_raw`);
    const counts: number[] = [];
    const problems: string[] = [];
    for (let i = 0; i < config.samples; i++) {
      try {
        counts.push(this.toCounts(await this.sysfs.number(file)));
      } catch (err) {
        if (err instanceof SensorFault && err.kind === 'missing') throw err;
        problems.push(err instanceof Error ? err.message : String(err));
      }
    }
    // A majority of good samples, or nothing: a median of mostly bad reads is not a measurement.
    if (counts.length * 2 <= config.samples) {
      throw new SensorFault('invalid', `${this.describe}: only ${counts.length} of ${config.samples} raw samples were valid (${problems[0] ?? ''})`);
    }
    let kg = config.offsetKg + median(counts) * config.kgPerCount;
    const comp = config.compensation;
    if (comp) {
      const temperature = context.latest(comp.channel);
      if (temperature === undefined || context.now() - temperature.t > comp.maxAge) {
        context.note(`uncompensated.${this.channel}`, `${this.channel}: no ${comp.channel} reading in the last ${Math.round(comp.maxAge / 1000)} s: published without temperature compensation`);
      } else {
        kg -= comp.kgPerDegree * (temperature.value - comp.referenceC);
      }
    }
    return [{ channel: this.channel, value: checkRange(this.describe, kg, config.rangeKg, 'kg') }];
  }

  /** Raw code to signed counts; a saturated code means an open or shorted bridge, not a weight. */
  private toCounts(raw: number): number {
    if (!Number.isInteger(raw)) throw new SensorFault('invalid', `${this.describe}: raw value ${raw} is not an integer`);
    const counts = this.config.driver === 'hx711-iio' ? raw - FULL_SCALE : raw;
    if (counts <= -FULL_SCALE || counts >= FULL_SCALE - 1) {
      throw new SensorFault('invalid', `${this.describe}: raw value ${raw} is at or past the ADC's full scale (a loose load-cell wire?)`);
    }
    return counts;
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}
