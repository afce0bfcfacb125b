/**
 * Sensirion SHT31-D temperature and humidity sensor, over the johnny-five
 * IO-plugin I2C calls, so it runs unchanged on a Firmata board and on the
 * simulated board. References are to the SHT3x-DIS datasheet, version 6.
 *
 * Why not johnny-five's own SHT31D controller: it measures in a tight loop
 * (every 16 ms, whatever the sampling interval) and ignores the CRC bytes.
 * This driver measures only when asked, and refuses a word whose CRC fails.
 *
 * A Firmata board answers every read, even one the sensor NACKed: StandardFirmata 2.4 sends the
 * string "I2C: Too few bytes received" and then its receive buffer, which still holds the last
 * good frame, CRCs and all. So a reply that came with an I2C string, a short reply, and a repeat
 * of the last frame right after a failed read are each counted and refused, never a measurement.
 */
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';

/** The I2C subset of the johnny-five IO-plugin interface that this driver uses. */
export interface I2cIo {
  i2cConfig(options: Record<string, unknown>): unknown;
  i2cWrite(address: number, bytes: number[]): unknown;
  i2cReadOnce(address: number, length: number, callback: (bytes: number[]) => void): unknown;
  /**
   * firmata.js (and the simulated board) are event emitters: Firmata string messages arrive as
   * `string` events (how the firmware reports a NACK), and a read's callback waits as a listener
   * of `I2C-reply-<address>-<register>`, which a timed-out read must remove or it stays forever.
   */
  on?(event: 'string', listener: (...args: unknown[]) => void): unknown;
  removeListener?(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface Sht31Options {
  /**
   * Resolves once every command written so far has left the host (a serial port's drain): the
   * conversion wait starts then, not at the i2cWrite call. Omitted: at the call.
   */
  sent?: () => Promise<void>;
  /** Counts what went wrong: `sht31.nack`, `sht31.short_reply`, `sht31.repeated_frame`, `sht31.timeout`, `sht31.crc_error`. */
  count?: (name: string) => void;
  /** Real ms a read may take before it counts as unanswered. */
  readTimeoutMs?: number;
  /** Real ms a measurement answers later reads (temperature and humidity share one); default 1 s. */
  reuseMs?: number;
}

export interface Sht31Measurement {
  readonly temperature: number;
  readonly humidity: number;
}

/** Table 9: single shot, high repeatability, clock stretching disabled. */
const MEASURE_HIGH_REPEATABILITY = [0x24, 0x00];
/** Table 13: soft reset. */
const SOFT_RESET = [0x30, 0xa2];
/**
 * Table 4: a high-repeatability measurement takes at most 15.5 ms; without clock stretching a
 * read before then is NACKed (4.3). The wait starts once the command has left the host; the read
 * request follows it down the same line, and the margin covers the rest of the command's trip:
 * a Firmata I2C write is 9 bytes, 1.6 ms at 57600 baud, plus a 1 ms USB frame on a USB-serial
 * bridge and the firmware's loop. 15.5 ms + 4.5 ms = 20 ms from the command's departure.
 */
const CONVERSION_MAX_MS = 15.5;
const CONVERSION_MARGIN_MS = 4.5;
const MEASURE_WAIT_MS = CONVERSION_MAX_MS + CONVERSION_MARGIN_MS;
/** Table 4: soft reset takes at most 1.5 ms; table 5 allows 1 ms power-up. */
const RESET_MS = 2;
const READ_TIMEOUT_MS = 1_000;
/** A measurement younger than this answers both temperature and humidity. */
const REUSE_MS = 1_000;
/** The register firmata.js names a reply by when a read names none. */
const NO_REGISTER = 0;

/** CRC-8: polynomial 0x31 (x^8 + x^5 + x^4 + 1), init 0xFF, no reflection, no final XOR (4.12). */
export function sht31Crc(msb: number, lsb: number): number {
  let crc = 0xff;
  for (const byte of [msb, lsb]) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/** 4.13: T = -45 + 175 * St / (2^16 - 1); RH = 100 * Srh / (2^16 - 1). */
export function decodeSht31(bytes: readonly number[]): Sht31Measurement {
  if (bytes.length !== 6 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 0xff)) {
    throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `SHT31: expected 6 bytes, got [${bytes.join(', ')}]`);
  }
  const [t0 = 0, t1 = 0, tCrc, h0 = 0, h1 = 0, hCrc] = bytes;
  if (sht31Crc(t0, t1) !== tCrc || sht31Crc(h0, h1) !== hCrc) {
    throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `SHT31: CRC mismatch in [${bytes.map((b) => `0x${b.toString(16)}`).join(', ')}]`, {
      hint: 'a noisy or long I2C bus: shorten the wires or add pull-ups',
    });
  }
  return {
    temperature: -45 + (175 * ((t0 << 8) | t1)) / 0xffff,
    humidity: (100 * ((h0 << 8) | h1)) / 0xffff,
  };
}

export class Sht31 {
  private inFlight: Promise<Sht31Measurement> | undefined;
  private last: { at: number; value: Sht31Measurement } | undefined;
  private lastFrame: readonly number[] | undefined;
  /** A read since the last good frame went wrong: the firmware's buffer may hand back that frame again. */
  private afterNack = false;
  private unanswered = 0;
  private cancel: (() => void) | undefined;
  private closed = false;

  constructor(private readonly io: I2cIo, private readonly address: number, private readonly options: Sht31Options = {}) {}

  /** Reads in a row that got no reply at all: a Firmata board answers every read, even a NACKed one, so this means the board is gone. */
  get unansweredInARow(): number {
    return this.unanswered;
  }

  async open(): Promise<void> {
    this.io.i2cConfig({ address: this.address });
    this.io.i2cWrite(this.address, SOFT_RESET);
    await this.options.sent?.();
    await delay(RESET_MS);
  }

  /** One measurement; concurrent callers, and callers within `reuseMs` (1 s by default), share it (the same object). */
  read(): Promise<Sht31Measurement> {
    if (this.last && Date.now() - this.last.at < (this.options.reuseMs ?? REUSE_MS)) return Promise.resolve(this.last.value);
    this.inFlight ??= this.measure().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    this.cancel?.();
  }

  private async measure(): Promise<Sht31Measurement> {
    if (this.closed) throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, 'SHT31: closed');
    this.io.i2cWrite(this.address, MEASURE_HIGH_REPEATABILITY);
    await this.options.sent?.();
    await delay(MEASURE_WAIT_MS);
    if (this.closed) throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, 'SHT31: closed');
    const { bytes, said } = await this.readFrame();
    const where = `SHT31 at 0x${this.address.toString(16)}`;
    if (said !== undefined) {
      this.fail('sht31.nack');
      const reply = bytes.length === 6 ? `the 6 bytes it sent [${hex(bytes)}] are its old buffer, not a measurement` : `it sent ${bytes.length} of 6 bytes`;
      throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `${where} did not acknowledge the read (the firmware said "${said}"); ${reply}`, {
        hint: 'check the sensor\'s wiring and power; the node counts these (sht31.nack in apiary status)',
      });
    }
    if (bytes.length !== 6) {
      this.fail('sht31.short_reply');
      throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `${where} answered ${bytes.length} of 6 bytes`, { hint: 'check the sensor\'s wiring and power' });
    }
    // Only the first frame after a failure is suspect: a steady hive can measure the same frame twice.
    const suspect = this.afterNack;
    this.afterNack = false;
    if (suspect && this.lastFrame?.every((b, i) => b === bytes[i])) {
      this.options.count?.('sht31.repeated_frame');
      throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `${where} repeated the last frame [${hex(bytes)}] right after a failed read: the firmware's old buffer, not a new measurement`, {
        hint: 'check the sensor\'s wiring and power',
      });
    }
    let value: Sht31Measurement;
    try {
      value = decodeSht31(bytes);
    } catch (err) {
      this.fail('sht31.crc_error');
      throw err;
    }
    this.lastFrame = bytes;
    this.last = { at: Date.now(), value };
    return value;
  }

  /** One 6-byte read, with any Firmata I2C string message that came with it. */
  private readFrame(): Promise<{ bytes: number[]; said: string | undefined }> {
    const event = `I2C-reply-${this.address}-${NO_REGISTER}`;
    return new Promise((resolve, reject) => {
      let said: string | undefined;
      const onString = (text: unknown) => { if (typeof text === 'string' && /i2c/i.test(text)) said ??= text; };
      const settle = () => {
        clearTimeout(timer);
        this.cancel = undefined;
        this.io.removeListener?.('string', onString);
      };
      const onReply = (bytes: unknown) => {
        settle();
        this.unanswered = 0;
        resolve({ bytes: Array.isArray(bytes) ? bytes.map(Number) : [], said });
      };
      const giveUp = (err: ApiaryError) => {
        settle();
        this.io.removeListener?.(event, onReply); // or every timed-out read leaves a listener behind
        reject(err);
      };
      const timer = setTimeout(() => {
        this.unanswered++;
        this.fail('sht31.timeout');
        giveUp(new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `SHT31 at 0x${this.address.toString(16)} did not answer within ${this.options.readTimeoutMs ?? READ_TIMEOUT_MS} ms`, {
          hint: 'check the wiring and device.sht31Address (0x44, or 0x45 with ADDR pulled high)',
        }));
      }, this.options.readTimeoutMs ?? READ_TIMEOUT_MS);
      this.cancel = () => giveUp(new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, 'SHT31: closed'));
      this.io.on?.('string', onString);
      this.io.i2cReadOnce(this.address, 6, onReply);
    });
  }

  private fail(counter: string): void {
    this.afterNack = true;
    this.options.count?.(counter);
  }
}

function hex(bytes: readonly number[]): string {
  return bytes.map((b) => `0x${b.toString(16)}`).join(', ');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
