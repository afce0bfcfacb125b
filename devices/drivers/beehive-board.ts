/**
 * The beehive board, read through johnny-five: an SHT31-D for in-hive
 * temperature and humidity, a load-cell amplifier on an analog pin for
 * weight, and an audio source for sound. The same code reads a real Firmata
 * board (io omitted, johnny-five opens the serial port) and the simulated
 * board (io = SimulatedBeehiveIO).
 *
 * Sampling is driven by the node clock, one timer per channel, reading the
 * latest value johnny-five holds; every value is range-checked against the
 * part's datasheet before it becomes a reading.
 */
import { EventEmitter } from 'node:events';
import type { Board, Sensor } from 'johnny-five';
import type { Clock } from '../../runtime/clock.js';
import type { DeviceConfig } from '../config.js';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { AudioSource, ChannelSpec, Device, DeviceEvents, SimulationControl } from '../device.js';
import { captureIntervals } from './j5-timers.js';
import { Sht31, type I2cIo } from './sht31.js';

const READY_TIMEOUT_MS = 15_000;
/** SHT31-D measurement ranges (datasheet tables 1 and 2): -40..125 °C, 0..100 %RH. */
const TEMPERATURE_RANGE: [number, number] = [-40, 125];
const HUMIDITY_RANGE: [number, number] = [0, 100];
const ADC_RANGE: [number, number] = [0, 1023];

export const BEEHIVE_CHANNELS: Record<'temperature' | 'humidity' | 'weight', ChannelSpec> = {
  temperature: { name: 'temperature', unit: '°C', label: 'Hive temperature', deviceClass: 'temperature', precision: 2 },
  humidity: { name: 'humidity', unit: '%', label: 'Hive humidity', deviceClass: 'humidity', precision: 1 },
  weight: { name: 'weight', unit: 'kg', label: 'Hive weight', deviceClass: 'weight', precision: 2 },
};

export interface BeehiveBoardOptions {
  config: DeviceConfig;
  clock: Clock;
  /** A johnny-five IO plugin; omitted = Firmata over serial (johnny-five's default). */
  io?: { open?: () => void; close?: () => void; isReady?: boolean };
  audio?: AudioSource;
  simulation?: SimulationControl;
  kind: string;
  /** Work before the board opens (the simulator loads its recordings here). */
  prepare?: () => Promise<void>;
}

export class BeehiveBoard extends EventEmitter<DeviceEvents> implements Device {
  readonly kind: string;
  readonly channels: readonly ChannelSpec[];
  readonly simulation: SimulationControl | undefined;
  readonly hasAudio: boolean;
  private board: Board | undefined;
  private sht31: Sht31 | undefined;
  private loadCell: Sensor | undefined;
  private readonly stops: (() => void)[] = [];
  private readonly j5Intervals: NodeJS.Timeout[] = [];
  private readonly counters = new Map<string, number>();
  private audioBusy = false;

  constructor(private readonly options: BeehiveBoardOptions) {
    super();
    this.kind = options.kind;
    this.simulation = options.simulation;
    this.hasAudio = options.audio !== undefined && options.config.sensors.sound.enabled;
    const sensors = options.config.sensors;
    this.channels = (['temperature', 'humidity', 'weight'] as const).filter((name) => sensors[name].enabled).map((name) => BEEHIVE_CHANNELS[name]);
  }

  async open(): Promise<void> {
    const { config, clock } = this.options;
    await this.options.prepare?.();
    const { default: five } = await import('johnny-five');
    const board = new five.Board({
      io: this.options.io,
      port: config.port,
      repl: false,
      debug: false,
      sigint: false,
      timeout: READY_TIMEOUT_MS,
    } as ConstructorParameters<typeof five.Board>[0]);
    this.board = board;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `the ${this.kind} board did not become ready within ${READY_TIMEOUT_MS / 1000} s`, {
        hint: 'check the cable and that the board runs StandardFirmata (or set device.kind: simulated-beehive)',
      })), READY_TIMEOUT_MS);
      const events = board as unknown as EventEmitter;
      events.once('ready', () => { clearTimeout(timer); resolve(); });
      events.once('error', (err: unknown) => {
        clearTimeout(timer);
        reject(new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `cannot open the ${this.kind} board${config.port ? ` on ${config.port}` : ''}: ${errorText(err)}`, {
          hint: 'check device.port (ls /dev/ttyACM* /dev/ttyUSB*), that you may use it (the dialout group), and that the board runs StandardFirmata',
          cause: err,
        }));
      });
      this.options.io?.open?.();
    });

    const sensors = config.sensors;
    if (sensors.temperature.enabled || sensors.humidity.enabled) {
      const io: unknown = board.io; // typed `any` by @types/johnny-five
      const sht31 = new Sht31(io as I2cIo, config.sht31Address);
      this.sht31 = sht31;
      await sht31.open();
      if (sensors.temperature.enabled) this.sample('temperature', sensors.temperature.interval, async () => (await sht31.read()).temperature, TEMPERATURE_RANGE, (v) => v);
      if (sensors.humidity.enabled) this.sample('humidity', sensors.humidity.interval, async () => (await sht31.read()).humidity, HUMIDITY_RANGE, (v) => v);
    }
    if (sensors.weight.enabled) {
      const { pin, kgPerCount, offsetKg } = sensors.weight;
      // johnny-five's Sensor averages the ADC reports between its events; its event rate is our interval.
      const freq = Math.max(25, Math.round(sensors.weight.interval / clock.speed));
      const loadCell = this.construct(() => new five.Sensor({ pin, freq, board }));
      this.loadCell = loadCell;
      const firstReport = new Promise<void>((resolve) => (loadCell as unknown as EventEmitter).once('data', () => resolve()));
      // kg = offset + count * scale: a linear load-cell amplifier into a 10-bit ADC.
      this.sample('weight', sensors.weight.interval, async () => { await firstReport; return loadCell.raw; }, ADC_RANGE, (count) => offsetKg + count * kgPerCount);
    }
    const audio = this.options.audio;
    if (audio && sensors.sound.enabled) {
      await audio.open();
      const captureSound = () => void this.captureAudio(audio, sensors.sound.frameSeconds);
      this.stops.push(clock.every(sensors.sound.interval, captureSound));
      captureSound();
    }
  }

  async close(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    for (const interval of this.j5Intervals.splice(0)) clearInterval(interval);
    this.sht31?.close();
    (this.loadCell as unknown as { disable(): void } | undefined)?.disable();
    this.options.io?.close?.();
    const transport = (this.board as unknown as { io?: { transport?: { close?: (cb: () => void) => void; isOpen?: boolean } } } | undefined)?.io?.transport;
    if (!this.options.io && transport?.isOpen) await new Promise<void>((resolve) => transport.close?.(() => resolve()));
    await this.options.audio?.close();
    this.board = undefined;
  }

  stats(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  private construct<T>(build: () => T): T {
    const { value, intervals } = captureIntervals(build);
    this.j5Intervals.push(...intervals);
    return value;
  }

  /** Samples one channel now and then every `intervalMs`; every value is range-checked before it becomes a reading. */
  private sample(channel: keyof typeof BEEHIVE_CHANNELS, intervalMs: number, read: () => Promise<number | null | undefined>, range: [number, number], convert: (raw: number) => number): void {
    const spec = BEEHIVE_CHANNELS[channel];
    let busy = false;
    const take = async (): Promise<void> => {
      if (busy) { this.count(`skipped.${channel}`); return; }
      busy = true;
      try {
        const raw = await read();
        if (this.board === undefined) return; // closed while reading
        if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < range[0] || raw > range[1]) {
          this.count(`rejected.${channel}`);
          this.emit('warning', new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `${channel}: raw value ${String(raw)} is outside the part's range ${range[0]}..${range[1]}`));
          return;
        }
        const value = Number(convert(raw).toFixed(spec.precision + 1));
        this.emit('reading', { channel: spec.name, value, unit: spec.unit, t: this.options.clock.now() });
      } catch (err) {
        this.count(`failed.${channel}`);
        if (this.board !== undefined) this.emit('warning', err instanceof Error ? err : new Error(String(err)));
      } finally {
        busy = false;
      }
    };
    this.stops.push(this.options.clock.every(intervalMs, () => void take()));
    void take();
  }

  private async captureAudio(audio: AudioSource, seconds: number): Promise<void> {
    if (this.audioBusy) { this.count('skipped.sound'); return; }
    this.audioBusy = true;
    try {
      this.emit('audio', await audio.capture(seconds));
    } catch (err) {
      this.count('rejected.sound');
      this.emit('warning', err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.audioBusy = false;
    }
  }

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }
}

/** johnny-five reports some errors as plain objects ({ message, class }), not Errors. */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err !== null && typeof err === 'object' && 'message' in err && typeof err.message === 'string') return err.message;
  return String(err);
}
