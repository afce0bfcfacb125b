/**
 * A johnny-five IO plugin for a beehive board that does not exist: it answers
 * at the register level exactly as the real parts on a real board would, so
 * the same driver code (devices/drivers: the SHT31 driver, the analog reports
 * of the load cell) reads it and a real Firmata board. Pin layout follows an
 * Arduino Uno: D0-D13, A0-A5 = 14-19.
 *
 * Parts simulated:
 * - Sensirion SHT31-D on I2C (0x44/0x45): single-shot measurement command
 *   0x2400, soft reset 0x30A2, 6-byte answer with CRC-8 per word
 *   (SHT3x-DIS datasheet v6, sections 4.3, 4.12, 4.13, table 9), ready only
 *   after its conversion time (table 4: 15.5 ms max at high repeatability).
 * - A load-cell amplifier on an analog pin, read by a 10-bit ADC.
 * - The Firmata firmware's ways: I2C replies arrive as `I2C-reply-<address>-<register>`
 *   events (as firmata.js emits them), a NACKed read is answered as
 *   StandardFirmata 2.4 does (see `nackReply`), commands travel a serial line
 *   in order and can be held up on it (`stallLine`, `pending`, `transport.drain`), and the board can
 *   be lost and come back (`SimulatedCable`).
 * The IO plugin interface: github.com/rwaldron/io-plugins (the spec johnny-five follows).
 */
import { EventEmitter } from 'node:events';
import { sht31Crc } from '../drivers/sht31.js';
import type { HiveSimulation } from '../sim/hive-simulation.js';

export { sht31Crc };

export const SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY = 0x2400;
export const SHT31_COMMAND_SOFT_RESET = 0x30a2;
const ADC_MAX = 0x3ff; // 10-bit
const ANALOG_PIN_OFFSET = 14;
const ANALOG_PIN_COUNT = 6;
const DIGITAL_PIN_COUNT = 14;

/** Firmata pin modes (firmata protocol, "pin mode" values). */
const MODES = { INPUT: 0x00, OUTPUT: 0x01, ANALOG: 0x02, PWM: 0x03, SERVO: 0x04, I2C: 0x06, PULLUP: 0x0b, UNKNOWN: 0x10 } as const;

interface PinState {
  supportedModes: number[];
  mode: number;
  value: number;
  report: number;
  analogChannel: number;
}

export interface WeightCalibration {
  /** Analog pin name ("A0"). */
  pin: string;
  kgPerCount: number;
  offsetKg: number;
}

/**
 * How the firmware answers a read that the sensor NACKed (no finished measurement):
 * - 'stale': as StandardFirmata 2.4 does: the string "I2C: Too few bytes received", then a
 *   full-length reply carrying its receive buffer, which still holds the previous reply's bytes
 *   (with valid CRCs);
 * - 'stale-unannounced': the same stale reply without the string (a string lost on the line);
 * - 'short': the string, then a reply with only the bytes received (none);
 * - 'none': nothing at all.
 */
export type NackReply = 'stale' | 'stale-unannounced' | 'short' | 'none';

export interface SimulatedBeehiveIOOptions {
  simulation: HiveSimulation;
  sht31Address: number;
  weight: WeightCalibration;
  /** Real milliseconds between analog reports (Firmata's sampling interval). */
  samplingIntervalMs?: number;
  /** Real ms from the measure command's arrival until the SHT31 has data (default 15.5, datasheet table 4's maximum). */
  sht31ConversionMs?: number;
  /** How a NACKed read is answered; default 'stale' (StandardFirmata 2.4). */
  nackReply?: NackReply;
  /** The board's cable; omitted = never unplugged. */
  cable?: SimulatedCable;
  /** The serial path it stands for, in error messages. */
  path?: string;
}

type ReadCallback = (value: number) => void;
type I2cCallback = (bytes: number[]) => void;

/**
 * The USB cable of a simulated board, which outlives any one connection through it: unplugged,
 * every open connection is lost and new ones fail until it is plugged back in.
 */
export class SimulatedCable {
  private pluggedIn = true;
  private readonly connections = new Set<SimulatedBeehiveIO>();

  get plugged(): boolean {
    return this.pluggedIn;
  }

  /**
   * Pulls the cable. `close`: the connections see the port close (what firmata.js emits when
   * serialport reports it gone); `silent`: they just stop answering (a hung board, a broken wire).
   */
  unplug(how: 'close' | 'silent' = 'close'): void {
    this.pluggedIn = false;
    for (const io of this.connections) io.lose(how === 'silent');
    this.connections.clear();
  }

  plug(): void {
    this.pluggedIn = true;
  }

  attach(io: SimulatedBeehiveIO): void {
    this.connections.add(io);
  }

  detach(io: SimulatedBeehiveIO): void {
    this.connections.delete(io);
  }
}

/** Inverse of the datasheet's conversion (4.13): T = -45 + 175 * St / (2^16 - 1). */
export function encodeSht31Temperature(celsius: number): number {
  return clampWord(Math.round(((celsius + 45) / 175) * 0xffff));
}

/** Inverse of RH = 100 * Srh / (2^16 - 1) (datasheet 4.13). */
export function encodeSht31Humidity(percent: number): number {
  return clampWord(Math.round((percent / 100) * 0xffff));
}

function clampWord(value: number): number {
  return Math.min(0xffff, Math.max(0, value));
}

export class SimulatedBeehiveIO extends EventEmitter {
  readonly name = 'SimulatedBeehive';
  readonly MODES = MODES;
  readonly HIGH = 1;
  readonly LOW = 0;
  readonly RESOLUTION = { ADC: ADC_MAX, DAC: null, PWM: 0xff };
  readonly pins: PinState[] = [];
  readonly analogPins: number[] = [];
  isReady = false;
  /** I2C traffic the simulated parts did not understand or NACKed. */
  unansweredI2c = 0;
  /** How a NACKed read is answered (may be changed while running). */
  nackReply: NackReply;
  /** The SHT31 stops answering: commands are ignored and every read is NACKed. */
  sht31Silent = false;
  /** Every Nth report of the load cell is a full-scale spike (interference on a long wire); 0 = none. */
  loadCellSpikeEvery = 0;
  /** As firmata.js's transport: `drain` calls back once every command sent so far has reached the board. */
  readonly transport = { drain: (callback: () => void) => this.drain(callback) };

  private readonly analogReaders = new Map<number, ReadCallback[]>();
  private sht31: { bytes: number[]; readyAt: number } | undefined;
  /** The firmware's I2C receive buffer: StandardFirmata 2.4 never clears it. */
  private readonly rxBuffer: number[] = new Array<number>(32).fill(0);
  private readonly line: { at: number; run: () => void }[] = [];
  private lineFreeAt = 0;
  private lineTimer: NodeJS.Timeout | undefined;
  private readonly drains: (() => void)[] = [];
  private analogTimer: NodeJS.Timeout | undefined;
  private samplingIntervalMs: number;
  private loadCellReports = 0;
  private closed = false;
  private lost = false;

  constructor(private readonly options: SimulatedBeehiveIOOptions) {
    super();
    this.samplingIntervalMs = options.samplingIntervalMs ?? 100;
    this.nackReply = options.nackReply ?? 'stale';
  }

  /** Commands sent and not yet arrived at the board (firmata.js counts its unfinished writes here). */
  get pending(): number {
    return this.line.length;
  }

  /** Brings the board up: johnny-five waits for "connect" then "ready"; an unplugged board's port cannot be opened. */
  open(): void {
    const cable = this.options.cable;
    if (cable && !cable.plugged) {
      setImmediate(() => this.emit('error', new Error(`Error: No such file or directory, cannot open ${this.options.path ?? '/dev/ttyACM0'}`)));
      return;
    }
    cable?.attach(this);
    for (let pin = 0; pin < DIGITAL_PIN_COUNT + ANALOG_PIN_COUNT; pin++) {
      const analog = pin >= ANALOG_PIN_OFFSET;
      this.pins.push({
        supportedModes: analog ? [MODES.INPUT, MODES.OUTPUT, MODES.ANALOG] : [MODES.INPUT, MODES.OUTPUT, MODES.PWM, MODES.SERVO],
        mode: analog ? MODES.ANALOG : MODES.OUTPUT,
        value: 0,
        report: 0,
        analogChannel: analog ? pin - ANALOG_PIN_OFFSET : 127,
      });
      if (analog) this.analogPins.push(pin);
    }
    setImmediate(() => {
      if (!this.connected) return;
      this.isReady = true;
      this.emit('connect');
      this.emit('ready');
    });
  }

  close(): void {
    this.options.cable?.detach(this);
    this.stop();
    this.closed = true;
    this.emit('close');
  }

  /** The cable was pulled: nothing more arrives or leaves; `silent` = not even a close event. */
  lose(silent: boolean): void {
    this.stop();
    this.lost = true;
    if (!silent) this.emit('close');
  }

  /** "A0" -> 14; numbers pass through. */
  normalize(pin: string | number): number {
    if (typeof pin === 'number') return pin;
    const match = /^A(\d+)$/i.exec(pin);
    return match ? ANALOG_PIN_OFFSET + Number(match[1]) : Number(pin);
  }

  pinMode(pin: number, mode: number): this {
    const state = this.pins[mode === MODES.ANALOG ? this.analogPin(pin) : pin];
    if (state) state.mode = mode;
    return this;
  }

  digitalWrite(pin: number, value: number): this {
    const state = this.pins[pin];
    if (state) state.value = value ? 1 : 0;
    return this;
  }

  analogWrite(pin: number, value: number): this {
    const state = this.pins[pin];
    if (state) state.value = value;
    return this;
  }

  pwmWrite(pin: number, value: number): this {
    return this.analogWrite(pin, value);
  }

  digitalRead(pin: number, callback: ReadCallback): void {
    setImmediate(() => callback(this.pins[pin]?.value ?? 0));
  }

  /** Accepts a pin number (14) or an analog channel (0), as Firmata clients differ. */
  analogRead(pin: number, callback: ReadCallback): void {
    const resolved = this.analogPin(pin);
    const list = this.analogReaders.get(resolved) ?? [];
    list.push(callback);
    this.analogReaders.set(resolved, list);
    const state = this.pins[resolved];
    if (state) state.report = 1;
    this.startAnalogReporting();
  }

  setSamplingInterval(ms: number): this {
    this.samplingIntervalMs = Math.max(10, ms);
    if (this.analogTimer) {
      clearInterval(this.analogTimer);
      this.analogTimer = undefined;
      this.startAnalogReporting();
    }
    return this;
  }

  reportAnalogPin(pin: number, value: 0 | 1): void {
    const state = this.pins[this.analogPin(pin)];
    if (state) state.report = value;
  }

  reportDigitalPin(): void {}

  i2cConfig(): this {
    return this;
  }

  /** i2cWrite(address, bytes) or i2cWrite(address, register, bytes). */
  i2cWrite(address: number, registerOrBytes: number | number[], maybeBytes?: number | number[]): this {
    const bytes = Array.isArray(registerOrBytes)
      ? registerOrBytes
      : [registerOrBytes, ...(maybeBytes === undefined ? [] : Array.isArray(maybeBytes) ? maybeBytes : [maybeBytes])];
    this.send(() => this.arriveWrite(address, bytes));
    return this;
  }

  i2cWriteReg(address: number, register: number, value: number): this {
    return this.i2cWrite(address, register, value);
  }

  /** i2cReadOnce(address, [register,] length, callback): the reply comes as firmata.js delivers it, an `I2C-reply-<address>-<register>` event. */
  i2cReadOnce(address: number, ...args: (number | I2cCallback)[]): this {
    const callback = args.at(-1);
    const length = args.at(-2);
    if (typeof callback !== 'function' || typeof length !== 'number') return this;
    const register = args.length === 3 && typeof args[0] === 'number' ? args[0] : 0;
    this.once(`I2C-reply-${address}-${register}`, callback);
    this.send(() => this.arriveRead(address, register, length));
    return this;
  }

  i2cRead(address: number, ...args: (number | I2cCallback)[]): this {
    return this.i2cReadOnce(address, ...args);
  }

  private get connected(): boolean {
    return !this.closed && !this.lost;
  }

  private arriveWrite(address: number, bytes: number[]): void {
    if (address !== this.options.sht31Address || bytes.length !== 2 || this.sht31Silent) {
      this.unansweredI2c++;
      return;
    }
    const command = ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0);
    if (command === SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY) {
      this.sht31 = { bytes: this.measureSht31(), readyAt: performance.now() + (this.options.sht31ConversionMs ?? 15.5) };
    } else if (command === SHT31_COMMAND_SOFT_RESET) {
      this.sht31 = undefined;
    } else {
      this.unansweredI2c++;
    }
  }

  private arriveRead(address: number, register: number, length: number): void {
    const event = `I2C-reply-${address}-${register}`;
    const measurement = address === this.options.sht31Address && !this.sht31Silent ? this.sht31 : undefined;
    if (measurement && performance.now() >= measurement.readyAt && length <= measurement.bytes.length) {
      this.sht31 = undefined; // single shot: one readout per measurement
      const reply = measurement.bytes.slice(0, length);
      reply.forEach((byte, i) => { this.rxBuffer[i] = byte; });
      this.later(event, reply);
      return;
    }
    // Without clock stretching the SHT31 NACKs a read header while no data is present (datasheet 4.3).
    this.unansweredI2c++;
    if (this.nackReply === 'none') return;
    if (this.nackReply !== 'stale-unannounced') this.later('string', 'I2C: Too few bytes received');
    this.later(event, this.nackReply === 'short' ? [] : this.rxBuffer.slice(0, length));
  }

  /**
   * The serial line carries nothing for `ms` (a backlog ahead of our commands, a busy USB bus, a
   * loaded host): commands sent meanwhile wait, then reach the board in order, all at once.
   */
  stallLine(ms: number): void {
    this.lineFreeAt = Math.max(this.lineFreeAt, performance.now() + ms);
  }

  /** Commands reach the board in order, at once unless the line is stalled. */
  private send(run: () => void): void {
    if (!this.connected) return;
    if (this.line.length === 0 && performance.now() >= this.lineFreeAt) { run(); return; }
    this.line.push({ at: Math.max(this.lineFreeAt, this.line.at(-1)?.at ?? 0), run });
    this.scheduleLine();
  }

  private scheduleLine(): void {
    const head = this.line[0];
    if (this.lineTimer || !head) return;
    this.lineTimer = setTimeout(() => {
      this.lineTimer = undefined;
      while (this.line[0] && this.line[0].at <= performance.now()) this.line.shift()?.run();
      if (this.line.length === 0) for (const callback of this.drains.splice(0)) callback();
      this.scheduleLine();
    }, Math.max(0, head.at - performance.now()));
  }

  private drain(callback: () => void): void {
    if (this.line.length === 0) setImmediate(callback);
    else this.drains.push(callback);
  }

  private later(event: string, value: unknown): void {
    setImmediate(() => { if (this.connected) this.emit(event, value); });
  }

  private stop(): void {
    this.isReady = false;
    if (this.analogTimer) clearInterval(this.analogTimer);
    this.analogTimer = undefined;
    this.analogReaders.clear();
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = undefined;
    this.line.length = 0;
    this.drains.length = 0;
  }

  private measureSht31(): number[] {
    const t = this.options.simulation.clock.now();
    const temperature = encodeSht31Temperature(this.options.simulation.temperatureAt(t));
    const humidity = encodeSht31Humidity(this.options.simulation.humidityAt(t));
    const word = (w: number) => [w >> 8, w & 0xff, sht31Crc(w >> 8, w & 0xff)];
    return [...word(temperature), ...word(humidity)];
  }

  private weightCount(): number {
    const { kgPerCount, offsetKg } = this.options.weight;
    const kg = this.options.simulation.weightAt(this.options.simulation.clock.now());
    return Math.min(ADC_MAX, Math.max(0, Math.round((kg - offsetKg) / kgPerCount)));
  }

  private loadCellReport(): number {
    this.loadCellReports++;
    return this.loadCellSpikeEvery > 0 && this.loadCellReports % this.loadCellSpikeEvery === 0 ? ADC_MAX : this.weightCount();
  }

  private startAnalogReporting(): void {
    if (this.analogTimer || !this.connected) return;
    const weightPin = this.normalize(this.options.weight.pin);
    this.analogTimer = setInterval(() => {
      for (const [pin, callbacks] of this.analogReaders) {
        if (this.pins[pin]?.report !== 1) continue;
        // Only the load cell is wired; other analog inputs float near zero.
        const value = pin === weightPin ? this.loadCellReport() : 0;
        for (const callback of callbacks) callback(value);
      }
    }, this.samplingIntervalMs);
  }

  /** Analog calls may name a channel (0-5) or a pin (14-19). */
  private analogPin(pin: number): number {
    return pin < ANALOG_PIN_COUNT ? pin + ANALOG_PIN_OFFSET : pin;
  }
}
