/**
 * The beehive board, read through johnny-five: an SHT31-D for in-hive
 * temperature and humidity, a load-cell amplifier on an analog pin for
 * weight, and an audio source for sound. The same code reads a real Firmata
 * board (io = firmata.js on a serialport 13 port, serial-firmata.ts) and the
 * simulated board (io = a SimulatedBeehiveIO for each connection).
 *
 * Sampling is driven by the node clock, one timer per channel; every value is
 * range-checked against the part's datasheet before it becomes a reading, and
 * a reading is only ever something measured since the previous one.
 *
 * A board can go away (a pulled cable, a hung firmware). It is taken for lost
 * when its port closes or fails, when the analog reports stop, or when SHT31
 * reads get no reply at all (Firmata answers even a NACK): the state turns
 * `disconnected`, nothing is published, and the same path is opened again
 * with backoff until the board answers; then the state is `connected` again.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../../runtime/clock.js';
import type { DeviceConfig } from '../config.js';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { AudioSource, ChannelSpec, Device, DeviceEvents, DeviceState, SimulationControl } from '../device.js';
import { AdcWindow } from './adc-window.js';
import { closeBoard, loadFive, openBoard, whenSent, type BoardLink, type Five, type IoPlugin } from './board-link.js';
import { Sht31, type Sht31Measurement } from './sht31.js';

/** SHT31-D measurement ranges (datasheet tables 1 and 2): -40..125 °C, 0..100 %RH. */
const TEMPERATURE_RANGE: [number, number] = [-40, 125];
const HUMIDITY_RANGE: [number, number] = [0, 100];
const ADC_RANGE: [number, number] = [0, 1023];
/** SHT31 reads in a row without any reply that mean the board is gone. */
const UNANSWERED_READS_LOST = 2;

/** Real-time limits (ms); tests shorten them. */
export interface BoardTiming {
  /** A board that does not say "ready" within this is not there. */
  readyTimeoutMs: number;
  /** No analog report for this long: the board is gone (Firmata reports every sampling interval). */
  silenceMs: number;
  /** First wait before reopening a lost board; it doubles after each failed try, up to `reconnectMaxMs`. */
  reconnectMs: number;
  reconnectMaxMs: number;
  /** An I2C read without a reply after this long is unanswered. */
  i2cReadTimeoutMs: number;
}

const DEFAULT_TIMING: BoardTiming = { readyTimeoutMs: 15_000, silenceMs: 5_000, reconnectMs: 1_000, reconnectMaxMs: 30_000, i2cReadTimeoutMs: 1_000 };

export const BEEHIVE_CHANNELS: Record<'temperature' | 'humidity' | 'weight', ChannelSpec> = {
  temperature: { name: 'temperature', unit: '°C', label: 'Hive temperature', deviceClass: 'temperature', precision: 2 },
  humidity: { name: 'humidity', unit: '%', label: 'Hive humidity', deviceClass: 'humidity', precision: 1 },
  weight: { name: 'weight', unit: 'kg', label: 'Hive weight', deviceClass: 'weight', precision: 2 },
};

type ChannelName = keyof typeof BEEHIVE_CHANNELS;

export interface BeehiveBoardOptions {
  config: DeviceConfig;
  clock: Clock;
  /** Makes a johnny-five IO plugin for each connection: serialFirmata() for a board on a serial port, or a simulated board. */
  io: () => IoPlugin | Promise<IoPlugin>;
  audio?: AudioSource;
  simulation?: SimulationControl;
  kind: string;
  /** Work before the board opens (the simulator loads its recordings here). */
  prepare?: () => Promise<void>;
  timing?: Partial<BoardTiming>;
}

/** One connection's sensors and timers: all of it goes when the board is lost. */
interface Session {
  readonly link: BoardLink;
  readonly stops: (() => void)[];
  sht31?: Sht31;
  dead: boolean;
}

export class BeehiveBoard extends EventEmitter<DeviceEvents> implements Device {
  readonly kind: string;
  readonly channels: readonly ChannelSpec[];
  readonly simulation: SimulationControl | undefined;
  readonly hasAudio: boolean;
  private currentState: DeviceState = 'disconnected';
  private five: Five | undefined;
  private session: Session | undefined;
  /** The board's serial path, for messages (the io factory reopens the same one). */
  private port: string | undefined;
  private readonly timing: BoardTiming;
  private reconnectWaitMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnecting: Promise<void> | undefined;
  /** Aborted by close(): a reopening still waiting for its board gives up at once. */
  private closing = new AbortController();
  private readonly stops: (() => void)[] = [];
  private readonly counters = new Map<string, number>();
  private audioBusy = false;
  private closed = true;

  constructor(private readonly options: BeehiveBoardOptions) {
    super();
    this.kind = options.kind;
    this.simulation = options.simulation;
    this.hasAudio = options.audio !== undefined && options.config.sensors.sound.enabled;
    const sensors = options.config.sensors;
    this.channels = (['temperature', 'humidity', 'weight'] as const).filter((name) => sensors[name].enabled).map((name) => BEEHIVE_CHANNELS[name]);
    this.port = options.config.port;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.reconnectWaitMs = this.timing.reconnectMs;
  }

  get state(): DeviceState {
    return this.currentState;
  }

  /** Opens the board (a failure here is the user's to fix: wrong port, no firmware), then the audio source. */
  async open(): Promise<void> {
    const { config, clock } = this.options;
    this.closed = false;
    this.closing = new AbortController();
    await this.options.prepare?.();
    this.five = await loadFive();
    await this.connect();
    const audio = this.options.audio;
    if (audio && config.sensors.sound.enabled) {
      await audio.open();
      const captureSound = () => void this.captureAudio(audio, config.sensors.sound.frameSeconds);
      this.stops.push(clock.every(config.sensors.sound.interval, captureSound));
      captureSound();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    clearTimeout(this.reconnectTimer);
    for (const stop of this.stops.splice(0)) stop();
    await this.reconnecting;
    const session = this.session;
    this.session = undefined;
    if (session) await this.end(session);
    await this.options.audio?.close();
    this.setState('disconnected');
  }

  /** Counters of rejected, missing and repeated data, board losses; `weight.spread_kg` and `weight.reports` describe the last weight. */
  stats(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  private async connect(): Promise<void> {
    const five = this.five;
    if (!five) throw new Error('BeehiveBoard.connect before open');
    const link = await openBoard({
      five, kind: this.kind, plugin: await this.options.io(), readyTimeoutMs: this.timing.readyTimeoutMs,
      signal: this.closing.signal,
    });
    const session: Session = { link, stops: [], dead: false };
    link.onLost = (reason) => this.lose(session, reason);
    this.port = link.io.port ?? this.port;
    try {
      await this.startSensors(session);
    } catch (err) {
      await this.end(session);
      throw err;
    }
    if (this.closed || session.dead) {
      await this.end(session);
      if (this.closed) return;
      throw new ApiaryError(ErrorCodes.DEVICE_DISCONNECTED, `the ${this.kind} board was lost while starting`);
    }
    this.session = session;
    this.setState('connected');
  }

  private async startSensors(session: Session): Promise<void> {
    const sensors = this.options.config.sensors;
    const io = session.link.io;
    // The firmware's own words ("I2C: Too few bytes received", ...): the SHT31 driver refuses the reply they came with.
    io.on?.('string', () => { if (!session.dead) this.count('firmata.strings'); });
    if (sensors.temperature.enabled || sensors.humidity.enabled) {
      // One measurement answers both channels' ticks, but never outlives half an interval (a fast simulated clock).
      const intervals = (['temperature', 'humidity'] as const).filter((c) => sensors[c].enabled).map((c) => sensors[c].interval);
      const realIntervalMs = Math.min(...intervals) / this.options.clock.speed;
      const sht31 = new Sht31(io, this.options.config.sht31Address, {
        sent: () => whenSent(io), count: (name) => this.count(name), readTimeoutMs: this.timing.i2cReadTimeoutMs, reuseMs: Math.min(1_000, realIntervalMs / 2),
      });
      session.sht31 = sht31;
      session.stops.push(() => sht31.close());
      await sht31.open();
      // Temperature and humidity share a measurement; each channel publishes one measurement once.
      for (const channel of ['temperature', 'humidity'] as const) {
        if (!sensors[channel].enabled) continue;
        let published: Sht31Measurement | undefined;
        this.sample(session, channel, sensors[channel].interval, channel === 'temperature' ? TEMPERATURE_RANGE : HUMIDITY_RANGE, (v) => v, async () => {
          const measurement = await sht31.read();
          if (measurement === published) { this.count(`unchanged.${channel}`); return undefined; }
          published = measurement;
          return measurement[channel];
        });
      }
    }
    if (sensors.weight.enabled) this.startWeight(session);
  }

  /** Weight: the median of the ADC reports since the previous reading, never a repeat of an old one. */
  private startWeight(session: Session): void {
    const { pin, kgPerCount, offsetKg, interval } = this.options.config.sensors.weight;
    const io = session.link.io;
    const window = new AdcWindow();
    const channel = Number(pin.slice(1)); // "A0" -> analog channel 0, as Firmata numbers them
    // About 16 reports per reading for the median, at most 10 a second, within Firmata's 10 ms floor.
    io.setSamplingInterval?.(Math.min(100, Math.max(10, Math.round(interval / this.options.clock.speed / 16))));
    io.pinMode(channel, io.MODES.ANALOG);
    io.analogRead(channel, (count) => { if (!session.dead) window.push(count); });
    const connectedAt = Date.now();
    const watch = setInterval(() => {
      const heard = window.lastReportAt ?? connectedAt;
      if (Date.now() - heard > this.timing.silenceMs) this.lose(session, `no analog report from ${pin} for ${Math.round((Date.now() - heard) / 1000)} s`);
    }, Math.min(1_000, this.timing.silenceMs / 4));
    session.stops.push(() => clearInterval(watch));
    // kg = offset + count * scale: a linear load-cell amplifier into a 10-bit ADC.
    this.sample(session, 'weight', interval, ADC_RANGE, (count) => offsetKg + count * kgPerCount, () => {
      const filtered = window.take();
      if (!filtered) {
        this.count('missing.weight');
        this.emit('warning', new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, window.lastReportAt === undefined
          ? `weight: no ADC report from ${pin} yet since the board connected`
          : `weight: no new ADC report from ${pin} since the last reading; nothing is published for this interval`, {
          hint: 'Firmata sends analog reports continuously: check that the board still runs StandardFirmata',
        }));
        return Promise.resolve(undefined);
      }
      this.counters.set('weight.spread_kg', Number((filtered.spread * Math.abs(kgPerCount)).toFixed(3)));
      this.counters.set('weight.reports', filtered.reports);
      return Promise.resolve(filtered.median);
    }, window.firstReport());
  }

  /**
   * Samples one channel every `intervalMs` (and once when `first` resolves, at once by default).
   * `read` resolves to a raw value, or to undefined when nothing new was measured (it counted why).
   */
  private sample(session: Session, channel: ChannelName, intervalMs: number, range: [number, number], convert: (raw: number) => number,
    read: () => Promise<number | undefined>, first: Promise<void> = Promise.resolve()): void {
    const spec = BEEHIVE_CHANNELS[channel];
    let busy = false;
    const take = async (): Promise<void> => {
      if (session.dead) return;
      if (busy) { this.count(`skipped.${channel}`); return; }
      busy = true;
      try {
        const raw = await read();
        if (session.dead || raw === undefined) return; // lost or closed while reading, or nothing new
        if (!Number.isFinite(raw) || raw < range[0] || raw > range[1]) {
          this.count(`rejected.${channel}`);
          this.emit('warning', new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `${channel}: raw value ${String(raw)} is outside the part's range ${range[0]}..${range[1]}`));
          return;
        }
        const value = Number(convert(raw).toFixed(spec.precision + 1));
        this.emit('reading', { channel: spec.name, value, unit: spec.unit, t: this.options.clock.now() });
      } catch (err) {
        if (session.dead) return;
        this.count(`failed.${channel}`);
        this.emit('warning', err instanceof Error ? err : new Error(String(err)));
        if ((session.sht31?.unansweredInARow ?? 0) >= UNANSWERED_READS_LOST) this.lose(session, `the SHT31 got no reply at all ${UNANSWERED_READS_LOST} times in a row`);
      } finally {
        busy = false;
      }
    };
    session.stops.push(this.options.clock.every(intervalMs, () => void take()));
    void first.then(take);
  }

  /** The board is gone: stop, say so, and look for it again. */
  private lose(session: Session, reason: string): void {
    if (session.dead || this.closed) return;
    session.dead = true;
    if (this.session === session) this.session = undefined;
    this.count('board.lost');
    this.emit('warning', new ApiaryError(ErrorCodes.DEVICE_DISCONNECTED, `the ${this.kind} board${this.port ? ` on ${this.port}` : ''} is gone: ${reason}; trying to reopen it`, {
      hint: 'check the cable and the board\'s power; readings resume by themselves once it answers',
    }));
    this.setState('disconnected');
    this.reconnecting = this.end(session).catch(() => undefined).then(() => { this.reconnecting = undefined; this.retry(); });
  }

  private retry(): void {
    if (this.closed) return;
    const wait = this.reconnectWaitMs;
    this.reconnectWaitMs = Math.min(wait * 2, this.timing.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnecting = this.connect().then(() => {
        this.reconnectWaitMs = this.timing.reconnectMs;
        if (!this.closed) this.count('board.reconnected');
      }, (err: unknown) => {
        this.count('board.reconnect_failed');
        if (!this.closed) this.emit('warning', err instanceof Error ? err : new Error(String(err)));
      }).finally(() => {
        this.reconnecting = undefined;
        if (!this.closed && !this.session) this.retry();
      });
    }, wait);
  }

  private async end(session: Session): Promise<void> {
    session.dead = true;
    for (const stop of session.stops.splice(0)) stop();
    if (this.five) await closeBoard(this.five, session.link);
  }

  private setState(state: DeviceState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
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
