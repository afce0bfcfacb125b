import { describe, expect, it } from 'vitest';
import { Sht31, decodeSht31, sht31Crc, type I2cIo } from '../../devices/drivers/sht31.js';
import { encodeSht31Humidity, encodeSht31Temperature } from '../../devices/io/simulated-beehive-io.js';
import { ErrorCodes } from '../../runtime/errors.js';

/** A scripted I2C bus: answers each read with the next scripted frame (or nothing). */
class ScriptedBus implements I2cIo {
  writes: number[][] = [];
  constructor(private readonly answers: (number[] | undefined)[]) {}
  i2cConfig(): void {}
  i2cWrite(_address: number, bytes: number[]): void { this.writes.push(bytes); }
  i2cReadOnce(_address: number, _length: number, callback: (bytes: number[]) => void): void {
    const answer = this.answers.shift();
    if (answer) setImmediate(() => callback(answer));
  }
}

function frame(celsius: number, humidity: number): number[] {
  const t = encodeSht31Temperature(celsius);
  const h = encodeSht31Humidity(humidity);
  return [t >> 8, t & 0xff, sht31Crc(t >> 8, t & 0xff), h >> 8, h & 0xff, sht31Crc(h >> 8, h & 0xff)];
}

describe('SHT31-D driver', () => {
  it('decodes per datasheet 4.13 (0x6666 -> 25 °C, 0x8000 -> 50 %RH)', () => {
    const m = decodeSht31([0x66, 0x66, sht31Crc(0x66, 0x66), 0x80, 0x00, sht31Crc(0x80, 0x00)]);
    expect(m.temperature).toBeCloseTo(-45 + (175 * 0x6666) / 0xffff, 6);
    expect(m.temperature).toBeCloseTo(25, 1);
    expect(m.humidity).toBeCloseTo(50, 2);
  });

  it('refuses a word whose CRC fails, and short frames', () => {
    const good = frame(34.5, 60);
    const bad = [...good];
    bad[1] = (bad[1] ?? 0) ^ 0x01;
    expect(() => decodeSht31(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.DEVICE_DATA_INVALID }) as Error);
    expect(() => decodeSht31(good.slice(0, 5))).toThrow(/expected 6 bytes/);
  });

  it('soft-resets on open, sends the single-shot command, and shares one measurement between callers', async () => {
    const bus = new ScriptedBus([frame(34.5, 60)]);
    const sensor = new Sht31(bus, 0x44);
    await sensor.open();
    const [a, b] = await Promise.all([sensor.read(), sensor.read()]);
    expect(a.temperature).toBeCloseTo(34.5, 2);
    expect(b).toEqual(a);
    expect(bus.writes).toEqual([[0x30, 0xa2], [0x24, 0x00]]);
  });

  it('times out when the part does not answer', async () => {
    const sensor = new Sht31(new ScriptedBus([]), 0x45);
    await expect(sensor.read()).rejects.toThrow(/0x45 did not answer/);
  });
});
