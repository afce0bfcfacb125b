/**
 * Any sensor that prints lines on a serial port (a CO2 sensor's UART, a
 * microcontroller printing "t=21.5 h=40"): one value per line, found as
 * `key=value` or by a regular expression's first group. The port is read
 * through serialport (prebuilt binaries for linux-arm64, no node-gyp).
 * Each interval publishes the latest line's value; an interval with no
 * line is counted as missing. A port that closes (USB unplugged) or cannot
 * open is reopened with a doubling backoff.
 */
import type { Clock } from '../../runtime/clock.js';
import type { ChannelSpec } from '../device.js';
import type { LinuxSensorConfig } from './config.js';
import { sensorChannel } from './config.js';
import { Retry } from './retry.js';
import { checkRange, SensorFault, type LinuxSensor, type SensorValue } from './sysfs.js';

type SerialLineConfig = Extract<LinuxSensorConfig, { driver: 'serial-line' }>;
/** What is used of a port: serialport's SerialPort, or its SerialPortMock in tests. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(callback: (err: Error | null) => void): void;
  close(callback?: (err: Error | null) => void): void;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}
/** Makes a port without opening it yet (`autoOpen: false`). */
export type SerialOpener = (path: string, baudRate: number) => Promise<SerialPortLike>;

export const defaultSerialOpener: SerialOpener = async (path, baudRate) => {
  const { SerialPort } = await import('serialport');
  return new SerialPort({ path, baudRate, autoOpen: false });
};

export class SerialLine implements LinuxSensor {
  readonly channels: readonly ChannelSpec[];
  readonly intervalMs: number;
  readonly describe: string;
  private readonly channel: string;
  private readonly pattern: RegExp | undefined;
  private readonly key: string;
  private port: SerialPortLike | undefined;
  private latest: { value: number } | SensorFault | undefined;
  private closed = true;
  private readonly retry: Retry;
  private faultListener: ((fault: SensorFault) => void) | undefined;

  constructor(private readonly config: SerialLineConfig, private readonly clock: Clock, private readonly opener: SerialOpener = defaultSerialOpener) {
    this.channel = sensorChannel(config);
    this.channels = [{ name: this.channel, unit: config.unit, label: config.label ?? this.channel, precision: config.precision }];
    this.intervalMs = config.interval;
    this.describe = `serial-line ${config.port}`;
    this.pattern = config.pattern === undefined ? undefined : new RegExp(config.pattern);
    this.key = config.key ?? this.channel;
    this.retry = new Retry(clock);
  }

  onFault(listener: (fault: SensorFault) => void): void {
    this.faultListener = listener;
  }

  open(): Promise<void> {
    this.closed = false;
    void this.connect();
    return Promise.resolve();
  }

  read(): Promise<readonly SensorValue[]> {
    const latest = this.latest;
    this.latest = undefined;
    if (latest instanceof SensorFault) return Promise.reject(latest);
    if (latest === undefined) {
      return Promise.reject(new SensorFault('missing', `${this.describe}: no "${this.pattern?.source ?? this.key}" line in the last ${Math.round(this.intervalMs / 1000)} s${this.port?.isOpen ? '' : ' (the port is not open)'}`));
    }
    return Promise.resolve([{ channel: this.channel, value: latest.value }]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry.stop();
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /** A value from one line, undefined when the line is not ours; a bad number is a fault. */
  parse(line: string): number | SensorFault | undefined {
    const text = line.replace(/\r$/, '').trim();
    let raw: string | undefined;
    if (this.pattern) {
      raw = this.pattern.exec(text)?.[1];
    } else {
      for (const pair of text.split(/[\s,;]+/)) {
        const eq = pair.indexOf('=');
        if (eq > 0 && pair.slice(0, eq) === this.key) raw = pair.slice(eq + 1);
      }
    }
    if (raw === undefined) return undefined;
    const number = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(number)) return new SensorFault('invalid', `${this.describe}: "${raw.slice(0, 20)}" in "${text.slice(0, 60)}" is not a number (a garbled line?)`);
    const { scale, offset, range, unit } = this.config;
    try {
      return checkRange(this.describe, number * scale + offset, range, unit);
    } catch (err) {
      return err as SensorFault;
    }
  }

  private async connect(): Promise<void> {
    const { port: path, baudRate } = this.config;
    let port: SerialPortLike;
    try {
      port = await this.opener(path, baudRate);
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.reopen(`cannot open ${path}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (this.closed) { port.close(); return; }
    this.port = port;
    let buffered = '';
    port.on('data', (chunk: Buffer) => {
      this.retry.reset();
      buffered += chunk.toString('latin1');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const value = this.parse(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        // A good value is never replaced by a later bad one before it is read; a fault is reported at the next read.
        if (value !== undefined && !(value instanceof SensorFault && this.latest !== undefined && !(this.latest instanceof SensorFault))) {
          this.latest = typeof value === 'number' ? { value } : value;
        }
      }
      if (buffered.length > 4096) buffered = ''; // not a line-oriented sensor, or the wrong baud rate
    });
    port.on('error', () => undefined); // followed by 'close', handled there
    port.once('close', () => {
      if (this.closed || this.port !== port) return;
      this.port = undefined;
      this.reopen(`${path} closed (unplugged?)`);
    });
  }

  private reopen(reason: string): void {
    this.faultListener?.(new SensorFault('missing', `${this.describe}: ${reason}; retrying in ${this.retry.nextSeconds} s`));
    this.retry.schedule(() => { if (!this.closed) void this.connect(); });
  }
}
