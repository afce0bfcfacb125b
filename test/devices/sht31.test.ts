import { describe, expect, it } from 'vitest';
import { whenSent } from '../../devices/drivers/board-link.js';
import { Sht31, decodeSht31, sht31Crc, type I2cIo } from '../../devices/drivers/sht31.js';
import { SimulatedBeehiveIO, encodeSht31Humidity, encodeSht31Temperature, type SimulatedBeehiveIOOptions } from '../../devices/io/simulated-beehive-io.js';
import { HiveSimulation } from '../../devices/sim/hive-simulation.js';
import { HiveSoundBank } from '../../devices/sim/hive-sound-bank.js';
import { UrbanReplay } from '../../devices/sim/urban-replay.js';
import { ScaledClock } from '../../runtime/clock.js';
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

  it('counts and refuses a short reply that came without a word from the firmware', async () => {
    const { counts, count } = counter();
    const sensor = new Sht31(new ScriptedBus([[0x66, 0x66, sht31Crc(0x66, 0x66)]]), 0x44, { count });
    await expect(sensor.read()).rejects.toThrow(/answered 3 of 6 bytes/);
    expect(counts).toEqual({ 'sht31.short_reply': 1 });
  });

  it('times out when the part does not answer', async () => {
    const sensor = new Sht31(new ScriptedBus([]), 0x45);
    await expect(sensor.read()).rejects.toThrow(/0x45 did not answer/);
  });
});

/** The simulated board (a johnny-five IO plugin answering as StandardFirmata 2.4 would), open and ready. */
async function simulatedBoard(options: Partial<SimulatedBeehiveIOOptions> = {}) {
  // Fast: a few real ms are minutes in the hive, so two measurements differ.
  const clock = new ScaledClock({ speed: 3_600, start: Date.UTC(2026, 5, 1, 12) });
  const replay = new UrbanReplay();
  await replay.open();
  const simulation = new HiveSimulation({ clock, replay, sounds: new HiveSoundBank(), seed: 7, startWeightKg: 40, preSwarmMs: 60_000, swarmMs: 60_000 });
  const io = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: { pin: 'A0', kgPerCount: 0.1, offsetKg: 0 }, ...options });
  const ready = new Promise((resolve) => io.once('ready', resolve));
  io.open();
  await ready;
  return { io, simulation, clock };
}

function counter() {
  const counts: Record<string, number> = {};
  return { counts, count: (name: string) => { counts[name] = (counts[name] ?? 0) + 1; } };
}

describe('SHT31-D driver on a Firmata board (the simulated StandardFirmata 2.4)', () => {
  it('a silent sensor does not look alive: the "too few bytes" reply, a short reply and the old frame again after a NACK are counted and refused', async () => {
    const { io, simulation, clock } = await simulatedBoard();
    const { counts, count } = counter();
    const sensor = new Sht31(io, 0x44, { sent: () => whenSent(io), count, reuseMs: 0 });
    await sensor.open();
    const first = await sensor.read();
    // Within 5: the hive moves fast at this clock speed (minutes a real second).
    expect(first.temperature).toBeCloseTo(simulation.temperatureAt(clock.now()), -1);

    io.sht31Silent = true;
    // StandardFirmata 2.4: the string, then the previous 6 bytes, CRCs valid.
    await expect(sensor.read()).rejects.toThrow(/did not acknowledge the read \(the firmware said "I2C: Too few bytes received"\)/);
    io.nackReply = 'stale-unannounced';
    await expect(sensor.read()).rejects.toThrow(/repeated the last frame .* right after a failed read/);
    // Later firmware: the string, then only the bytes received.
    io.nackReply = 'short';
    await expect(sensor.read()).rejects.toThrow(/the firmware said "I2C: Too few bytes received"\); it sent 0 of 6 bytes/);
    expect(counts).toEqual({ 'sht31.nack': 2, 'sht31.repeated_frame': 1 });

    io.sht31Silent = false;
    const back = await sensor.read();
    expect(back).not.toBe(first);
    expect(back.humidity).toBeCloseTo(simulation.humidityAt(clock.now()), -1);
    expect(Object.values(counts).reduce((a, b) => a + b)).toBe(3);
    sensor.close();
    io.close();
  });

  it('times the conversion (15.5 ms max) from when the command left, not from the i2cWrite call: a stalled line does not make it read too early', async () => {
    const { io, simulation, clock } = await simulatedBoard();
    // Timed from the call, the read waits on the stalled line behind the command and reaches the sensor mid-conversion.
    const fromTheCall = new Sht31(io, 0x44, { reuseMs: 0 });
    io.stallLine(60);
    await expect(fromTheCall.read()).rejects.toThrow(/did not acknowledge the read/);
    const { counts, count } = counter();
    const fromDeparture = new Sht31(io, 0x44, { sent: () => whenSent(io), count, reuseMs: 0 });
    io.stallLine(60);
    const m = await fromDeparture.read();
    expect(m.temperature).toBeCloseTo(simulation.temperatureAt(clock.now()), -1);
    expect(counts).toEqual({});
    io.close();
  });

  it('removes the reply listener of every read that timed out (no listener leak, no MaxListenersExceededWarning)', async () => {
    const { io } = await simulatedBoard({ nackReply: 'none' });
    io.sht31Silent = true;
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const { counts, count } = counter();
      const sensor = new Sht31(io, 0x44, { readTimeoutMs: 20, count, reuseMs: 0 });
      for (let i = 0; i < 12; i++) await expect(sensor.read()).rejects.toThrow(/did not answer within 20 ms/);
      expect(io.listenerCount('I2C-reply-68-0')).toBe(0);
      expect(io.listenerCount('string')).toBe(0);
      expect(sensor.unansweredInARow).toBe(12);
      expect(counts['sht31.timeout']).toBe(12);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      io.close();
    }
  });
});
