/**
 * DS18B20 temperature probe on 1-Wire, through the kernel's w1-gpio and
 * w1_therm drivers: /sys/bus/w1/devices/28-<id>/w1_slave holds two lines,
 *
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 *
 * the 9 scratchpad bytes with the kernel's CRC verdict, then the temperature
 * in millidegrees. Checks, from the Maxim DS18B20 datasheet (19-7487, rev. 6):
 * - the CRC (YES from the kernel, and recomputed here: CRC-8, x^8+x^5+x^4+1,
 *   over bytes 0-7 equals byte 8; "CRC Generation");
 * - the configuration register (byte 4) has bits 0-4 set ("Configuration
 *   Register", Figure 10): an all-zero scratchpad from a shorted bus has a
 *   valid CRC of 0 but fails this;
 * - 85 °C is the temperature register's power-on reset value (Table 1, Note):
 *   a probe that lost power mid-conversion reports it, so it is refused;
 * - the measuring range is -55 to +125 °C ("Features").
 */
import path from 'node:path';
import type { LinuxSensorConfig } from './config.js';
import { sensorChannel } from './config.js';
import { channelSpec, checkRange, SensorFault, type LinuxSensor, type SensorValue, type Sysfs } from './sysfs.js';

const W1_DEVICES = 'sys/bus/w1/devices';
const RANGE: [number, number] = [-55, 125];
const POWER_ON_RESET_MILLI = 85_000;

type Ds18b20Config = Extract<LinuxSensorConfig, { driver: 'ds18b20' }>;

export class Ds18b20 implements LinuxSensor {
  readonly channels;
  readonly intervalMs: number;
  readonly describe: string;
  private readonly channel: string;

  constructor(private readonly sysfs: Sysfs, private readonly config: Ds18b20Config) {
    this.channel = sensorChannel(config);
    this.channels = [channelSpec(this.channel, 'temperature', config.label)];
    this.intervalMs = config.interval;
    this.describe = `ds18b20 ${config.id ?? '(the only one)'}`;
  }

  async read(): Promise<readonly SensorValue[]> {
    const id = this.config.id ?? await this.onlyProbe();
    const text = await this.sysfs.text(path.join(W1_DEVICES, id, 'w1_slave'));
    return [{ channel: this.channel, value: parseW1Slave(text, id) }];
  }

  private async onlyProbe(): Promise<string> {
    const probes = (await this.sysfs.list(W1_DEVICES)).filter((entry) => entry.startsWith('28-'));
    if (probes.length === 1 && probes[0] !== undefined) return probes[0];
    if (probes.length === 0) throw new SensorFault('missing', `no DS18B20 under /${W1_DEVICES} (is dtoverlay=w1-gpio set, and the probe wired with a 4.7 kΩ pull-up?)`);
    throw new SensorFault('missing', `${probes.length} DS18B20 probes on the bus (${probes.join(', ')}): set "id" on each sensor`);
  }
}

/** The temperature in °C from a w1_slave text; any doubt is a SensorFault. */
export function parseW1Slave(text: string, id = 'ds18b20'): number {
  const [crcLine, tLine] = text.split('\n');
  const crcMatch = /^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$/i.exec(crcLine?.trim() ?? '');
  if (!crcMatch || tLine === undefined) throw new SensorFault('crc', `${id}: unreadable w1_slave (a read cut short?): "${text.slice(0, 60)}"`);
  if (crcMatch[3] !== 'YES') throw new SensorFault('crc', `${id}: the kernel reports a CRC error (crc=${crcMatch[2]} NO): noise on the 1-Wire line`);
  const bytes = (crcMatch[1] ?? '').trim().split(' ').map((b) => parseInt(b, 16));
  if (crc8(bytes.slice(0, 8)) !== bytes[8]) throw new SensorFault('crc', `${id}: scratchpad CRC mismatch (${crcMatch[1]?.trim()})`);
  if (((bytes[4] ?? 0) & 0x1f) !== 0x1f) throw new SensorFault('invalid', `${id}: configuration byte ${bytes[4]?.toString(16)} is not a DS18B20's (a shorted or missing probe reads all zeros)`);
  const tMatch = /t=(-?\d+)\s*$/.exec(tLine);
  if (!tMatch) throw new SensorFault('crc', `${id}: no t= on the second w1_slave line`);
  const milli = Number(tMatch[1]);
  if (milli === POWER_ON_RESET_MILLI) throw new SensorFault('invalid', `${id}: 85 °C is the DS18B20's power-on value, not a measurement (the probe lost power: check the wiring, or use external power rather than parasite power)`);
  return checkRange(id, milli / 1000, RANGE, '°C');
}

/** Dallas/Maxim CRC-8 (polynomial x^8 + x^5 + x^4 + 1, LSB first). */
export function crc8(bytes: readonly number[]): number {
  let crc = 0;
  for (const byte of bytes) {
    let b = byte;
    for (let i = 0; i < 8; i++) {
      const mix = (crc ^ b) & 0x01;
      crc >>= 1;
      if (mix) crc ^= 0x8c;
      b >>= 1;
    }
  }
  return crc;
}
