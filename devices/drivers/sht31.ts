/**
 * Sensirion SHT31-D temperature and humidity sensor, over the johnny-five
 * IO-plugin I2C calls, so it runs unchanged on a Firmata board and on the
 * simulated board. References are to the SHT3x-DIS datasheet, version 6.
 *
 * Why not johnny-five's own SHT31D controller: it measures in a tight loop
 * (every 16 ms, whatever the sampling interval) and ignores the CRC bytes.
 * This driver measures only when asked, and refuses a word whose CRC fails.
 */
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';

/** The I2C subset of the johnny-five IO-plugin interface that this driver uses. */
export interface I2cIo {
  i2cConfig(options: Record<string, unknown>): unknown;
  i2cWrite(address: number, bytes: number[]): unknown;
  i2cReadOnce(address: number, length: number, callback: (bytes: number[]) => void): unknown;
}

export interface Sht31Measurement {
  readonly temperature: number;
  readonly humidity: number;
}

/** Table 9: single shot, high repeatability, clock stretching disabled. */
const MEASURE_HIGH_REPEATABILITY = [0x24, 0x00];
/** Table 13: soft reset. */
const SOFT_RESET = [0x30, 0xa2];
/** Table 4: a high-repeatability measurement takes at most 15.5 ms. */
const MEASUREMENT_MS = 16;
/** Table 4: soft reset takes at most 1.5 ms; table 5 allows 1 ms power-up. */
const RESET_MS = 2;
const READ_TIMEOUT_MS = 1_000;
/** A measurement younger than this answers both temperature and humidity. */
const REUSE_MS = 1_000;

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
  private closed = false;

  constructor(private readonly io: I2cIo, private readonly address: number) {}

  async open(): Promise<void> {
    this.io.i2cConfig({ address: this.address });
    this.io.i2cWrite(this.address, SOFT_RESET);
    await delay(RESET_MS);
  }

  /** One measurement; concurrent callers, and callers within a second, share it. */
  read(): Promise<Sht31Measurement> {
    if (this.last && Date.now() - this.last.at < REUSE_MS) return Promise.resolve(this.last.value);
    this.inFlight ??= this.measure().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
  }

  private async measure(): Promise<Sht31Measurement> {
    if (this.closed) throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, 'SHT31: closed');
    this.io.i2cWrite(this.address, MEASURE_HIGH_REPEATABILITY);
    await delay(MEASUREMENT_MS);
    const bytes = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `SHT31 at 0x${this.address.toString(16)} did not answer within ${READ_TIMEOUT_MS} ms`, {
        hint: 'check the wiring and device.sht31Address (0x44, or 0x45 with ADDR pulled high)',
      })), READ_TIMEOUT_MS);
      this.io.i2cReadOnce(this.address, 6, (data) => { clearTimeout(timer); resolve(data); });
    });
    const value = decodeSht31(bytes);
    this.last = { at: Date.now(), value };
    return value;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
