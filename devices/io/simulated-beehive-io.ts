/**
 * A johnny-five IO plugin for a beehive board that does not exist: it answers
 * at the register level exactly as the real parts on a real board would, so
 * the same johnny-five code (SHT31D Multi, analog Sensor) reads it and a real
 * Firmata board. Pin layout follows an Arduino Uno: D0-D13, A0-A5 = 14-19.
 *
 * Parts simulated:
 * - Sensirion SHT31-D on I2C (0x44/0x45): single-shot measurement command
 *   0x2400, soft reset 0x30A2, 6-byte answer with CRC-8 per word
 *   (SHT3x-DIS datasheet v6, sections 4.3, 4.12, 4.13, table 9).
 * - A load-cell amplifier on an analog pin, read by a 10-bit ADC.
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

export interface SimulatedBeehiveIOOptions {
  simulation: HiveSimulation;
  sht31Address: number;
  weight: WeightCalibration;
  /** Real milliseconds between analog reports (Firmata's sampling interval). */
  samplingIntervalMs?: number;
}

type ReadCallback = (value: number) => void;
type I2cCallback = (bytes: number[]) => void;

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
  /** I2C traffic the simulated parts did not understand (a real bus would NACK it). */
  unansweredI2c = 0;

  private readonly analogReaders = new Map<number, ReadCallback[]>();
  private readonly latched = new Map<number, number[]>();
  private analogTimer: NodeJS.Timeout | undefined;
  private samplingIntervalMs: number;
  private closed = false;

  constructor(private readonly options: SimulatedBeehiveIOOptions) {
    super();
    this.samplingIntervalMs = options.samplingIntervalMs ?? 100;
  }

  /** Brings the board up: johnny-five waits for "connect" then "ready". */
  open(): void {
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
      if (this.closed) return;
      this.isReady = true;
      this.emit('connect');
      this.emit('ready');
    });
  }

  close(): void {
    this.closed = true;
    if (this.analogTimer) clearInterval(this.analogTimer);
    this.analogTimer = undefined;
    this.analogReaders.clear();
    this.emit('close');
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
    if (address !== this.options.sht31Address || bytes.length !== 2) {
      this.unansweredI2c++;
      return this;
    }
    const command = ((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0);
    if (command === SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY) {
      this.latched.set(address, this.measureSht31());
    } else if (command === SHT31_COMMAND_SOFT_RESET) {
      this.latched.delete(address);
    } else {
      this.unansweredI2c++;
    }
    return this;
  }

  i2cWriteReg(address: number, register: number, value: number): this {
    return this.i2cWrite(address, register, value);
  }

  /** i2cReadOnce(address, [register,] length, callback). */
  i2cReadOnce(address: number, ...args: (number | I2cCallback)[]): this {
    const callback = args.at(-1);
    const length = args.at(-2);
    if (typeof callback !== 'function' || typeof length !== 'number') return this;
    const measurement = this.latched.get(address);
    if (!measurement || length > measurement.length) {
      // A real SHT31 NACKs a read without a measurement: Firmata answers nothing.
      this.unansweredI2c++;
      return this;
    }
    this.latched.delete(address);
    setImmediate(() => {
      if (!this.closed) callback(measurement.slice(0, length));
    });
    return this;
  }

  i2cRead(address: number, ...args: (number | I2cCallback)[]): this {
    return this.i2cReadOnce(address, ...args);
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

  private startAnalogReporting(): void {
    if (this.analogTimer || this.closed) return;
    const weightPin = this.normalize(this.options.weight.pin);
    this.analogTimer = setInterval(() => {
      for (const [pin, callbacks] of this.analogReaders) {
        if (this.pins[pin]?.report !== 1) continue;
        // Only the load cell is wired; other analog inputs float near zero.
        const value = pin === weightPin ? this.weightCount() : 0;
        for (const callback of callbacks) callback(value);
      }
    }, this.samplingIntervalMs);
  }

  /** Analog calls may name a channel (0-5) or a pin (14-19). */
  private analogPin(pin: number): number {
    return pin < ANALOG_PIN_COUNT ? pin + ANALOG_PIN_OFFSET : pin;
  }
}
