/**
 * Reading the kernel's sysfs through a root-path seam: every path is taken
 * under `root` ("/" on a board, a temp dir holding a fake tree in tests), and
 * every failure becomes a SensorFault of one of three kinds, which the
 * device counts and reports without ever publishing a value.
 */
import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChannelSpec } from '../device.js';

/** missing: the file or device is gone (unplugged); crc: the bus said the data is corrupt; invalid: a value no part can produce. */
export type FaultKind = 'missing' | 'crc' | 'invalid';

export class SensorFault extends Error {
  constructor(readonly kind: FaultKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SensorFault';
  }
}

/** One value a sensor measured, for one of its channels. */
export interface SensorValue {
  readonly channel: string;
  readonly value: number;
}

/** What the device knows that a sensor may use (the load cell's temperature). */
export interface SensorContext {
  latest(channel: string): { value: number; t: number } | undefined;
  now(): number;
  /** Counts `counter` in the device stats and reports `message` as a warning (the value is still published). */
  note(counter: string, message: string): void;
}

/** One configured sensor, read on its own timer by the LinuxDevice. */
export interface LinuxSensor {
  readonly channels: readonly ChannelSpec[];
  readonly intervalMs: number;
  /** For messages: "ds18b20 28-0316a2795bff". */
  readonly describe: string;
  read(context: SensorContext): Promise<readonly SensorValue[]>;
  open?(): Promise<void>;
  close?(): Promise<void>;
  /** Problems found outside read() (a serial port that closed), for the device to count. */
  onFault?(listener: (fault: SensorFault) => void): void;
}

export class Sysfs {
  constructor(readonly root: string) {}

  resolve(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  /** A sysfs attribute's text, trimmed; a missing file or read error is a `missing` fault (the device is gone). */
  async text(file: string): Promise<string> {
    try {
      return (await readFile(this.resolve(file), 'utf8')).trim();
    } catch (err) {
      throw new SensorFault('missing', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }

  /** A numeric attribute; text that is not a number is `invalid`. */
  async number(file: string): Promise<number> {
    const text = await this.text(file);
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) throw new SensorFault('invalid', `${file} holds "${text.slice(0, 40)}", not a number`);
    return value;
  }

  async exists(file: string): Promise<boolean> {
    try {
      await access(this.resolve(file)); // not read: reading some attributes starts a measurement
      return true;
    } catch {
      return false;
    }
  }

  /** Entries of a directory, sorted naturally (hwmon2 before hwmon10); none when it is missing. */
  async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(this.resolve(dir))).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    } catch {
      return [];
    }
  }

  /**
   * The `index`-th device under `dir` (`class/hwmon`, `bus/iio/devices`) whose `name` attribute is `name`:
   * hwmonN and iio:deviceN numbers follow probe order and change between boots, so devices are found by name.
   */
  async findByName(dir: string, prefix: string, name: string, index: number, what: string): Promise<string> {
    const matches: string[] = [];
    for (const entry of await this.list(dir)) {
      if (!entry.startsWith(prefix)) continue;
      const found = await this.text(path.join(dir, entry, 'name')).catch(() => undefined);
      if (found === name) matches.push(path.join(dir, entry));
    }
    const match = matches[index];
    if (match === undefined) {
      throw new SensorFault('missing', `no ${what} device named "${name}"${index > 0 ? ` (#${index + 1})` : ''} under /${dir}`);
    }
    return match;
  }
}

/** A value outside [min, max] is a fault, never a reading. */
export function checkRange(what: string, value: number, range: readonly number[], unit: string): number {
  const [min = -Infinity, max = Infinity] = range;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new SensorFault('invalid', `${what}: ${value} ${unit} is outside ${min}..${max} ${unit}`);
  }
  return value;
}

/** Channel specs per quantity (units as the node publishes them). */
export const QUANTITY_CHANNELS = {
  temperature: { unit: '°C', label: 'Temperature', deviceClass: 'temperature', precision: 2 },
  humidity: { unit: '%', label: 'Humidity', deviceClass: 'humidity', precision: 1 },
  pressure: { unit: 'hPa', label: 'Pressure', deviceClass: 'pressure', precision: 1 },
  weight: { unit: 'kg', label: 'Weight', deviceClass: 'weight', precision: 2 },
} as const;

export function channelSpec(name: string, quantity: keyof typeof QUANTITY_CHANNELS, label?: string): ChannelSpec {
  const spec = QUANTITY_CHANNELS[quantity];
  return { name, unit: spec.unit, label: label ?? spec.label, deviceClass: spec.deviceClass, precision: spec.precision };
}
