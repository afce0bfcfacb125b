import { describe, expect, it } from 'vitest';
import { ScaledClock } from '../../runtime/clock.js';
import {
  SimulatedBeehiveIO, SimulatedCable, sht31Crc, encodeSht31Humidity, encodeSht31Temperature,
  SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY, type SimulatedBeehiveIOOptions,
} from '../../devices/io/simulated-beehive-io.js';
import { HiveSimulation } from '../../devices/sim/hive-simulation.js';
import { HiveSoundBank } from '../../devices/sim/hive-sound-bank.js';
import { UrbanReplay } from '../../devices/sim/urban-replay.js';

async function makeSimulation(speed = 1) {
  const clock = new ScaledClock({ speed, start: Date.UTC(2026, 5, 1, 12) });
  const replay = new UrbanReplay();
  await replay.open();
  const sounds = new HiveSoundBank();
  await sounds.open();
  const simulation = new HiveSimulation({ clock, replay, sounds, seed: 7, startWeightKg: 40, preSwarmMs: 60_000, swarmMs: 60_000 });
  return { clock, replay, simulation };
}

describe('SHT31-D encoding (datasheet 4.12, 4.13)', () => {
  it('computes the datasheet CRC example: 0xBEEF -> 0x92', () => {
    expect(sht31Crc(0xbe, 0xef)).toBe(0x92);
  });
  it('inverts the datasheet conversion within one LSB', () => {
    for (const celsius of [-40, 0, 21.5, 34.7, 125]) {
      const raw = encodeSht31Temperature(celsius);
      expect(-45 + (175 * raw) / 0xffff).toBeCloseTo(celsius, 2);
    }
    expect((100 * encodeSht31Humidity(55.5)) / 0xffff).toBeCloseTo(55.5, 2);
    expect(encodeSht31Temperature(500)).toBe(0xffff);
  });
});

describe('SimulatedBeehiveIO', () => {
  it('answers a single-shot SHT31 measurement with CRC-checked words matching the simulation', async () => {
    const { simulation, clock } = await makeSimulation();
    const io = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: { pin: 'A0', kgPerCount: 0.1, offsetKg: 0 } });
    io.open();
    await new Promise((resolve) => io.once('ready', resolve));
    io.i2cWrite(0x44, [SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY >> 8, SHT31_COMMAND_MEASURE_HIGH_REPEATABILITY & 0xff]);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the conversion: 15.5 ms at most (datasheet table 4)
    const bytes = await new Promise<number[]>((resolve) => io.i2cReadOnce(0x44, 6, resolve));
    expect(bytes).toHaveLength(6);
    const [t0 = 0, t1 = 0, tc, h0 = 0, h1 = 0, hc] = bytes;
    expect(tc).toBe(sht31Crc(t0, t1));
    expect(hc).toBe(sht31Crc(h0, h1));
    const celsius = -45 + (175 * ((t0 << 8) | t1)) / 0xffff;
    expect(celsius).toBeCloseTo(simulation.temperatureAt(clock.now()), 0);
    io.close();
  });

  it('does not answer a read without a measurement, nor a wrong address (a real bus NACKs), when the firmware says nothing of NACKs', async () => {
    const { simulation } = await makeSimulation();
    const io = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: { pin: 'A0', kgPerCount: 0.1, offsetKg: 0 }, nackReply: 'none' });
    io.open();
    let answered = false;
    io.i2cReadOnce(0x44, 6, () => { answered = true; });
    io.i2cWrite(0x45, [0x24, 0x00]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answered).toBe(false);
    expect(io.unansweredI2c).toBe(2);
    io.close();
  });

  it('reports the load cell as 10-bit ADC counts on its analog pin', async () => {
    const { simulation, clock } = await makeSimulation();
    const io = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: { pin: 'A0', kgPerCount: 0.1, offsetKg: 0 }, samplingIntervalMs: 10 });
    io.open();
    const count = await new Promise<number>((resolve) => io.analogRead(0, resolve));
    expect(count).toBeGreaterThan(300);
    expect(count).toBeLessThanOrEqual(1023);
    expect(count * 0.1).toBeCloseTo(simulation.weightAt(clock.now()), 0);
    io.close();
  });
});

const WEIGHT = { pin: 'A0', kgPerCount: 0.1, offsetKg: 0 };
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function openBoard(options: Partial<SimulatedBeehiveIOOptions> = {}) {
  const { simulation } = await makeSimulation();
  const io = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: WEIGHT, ...options });
  const ready = new Promise((resolve) => io.once('ready', resolve));
  io.open();
  await ready;
  return io;
}

describe('SimulatedBeehiveIO as StandardFirmata 2.4 behaves', () => {
  const measure = (io: SimulatedBeehiveIO) => io.i2cWrite(0x44, [0x24, 0x00]);
  const read = (io: SimulatedBeehiveIO) => new Promise<number[]>((resolve) => io.i2cReadOnce(0x44, 6, resolve));

  it('answers a NACKed read with the string "too few bytes" and then the old reply bytes; other firmware: a short reply, or no string', async () => {
    const io = await openBoard();
    const strings: string[] = [];
    io.on('string', (text: string) => strings.push(text));
    measure(io);
    // Read during the conversion: NACKed; the firmware's buffer still holds its power-up zeros.
    expect(await read(io)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(strings).toEqual(['I2C: Too few bytes received']);
    await delay(20);
    const good = await read(io);
    expect(good[2]).toBe(sht31Crc(good[0] ?? 0, good[1] ?? 0));
    expect(good).not.toEqual([0, 0, 0, 0, 0, 0]);
    expect(strings).toHaveLength(1);
    // One readout per measurement: the next read is NACKed and gets the good frame again.
    expect(await read(io)).toEqual(good);
    expect(strings).toHaveLength(2);
    io.nackReply = 'short';
    expect(await read(io)).toEqual([]);
    expect(strings).toHaveLength(3);
    io.nackReply = 'stale-unannounced';
    expect(await read(io)).toEqual(good);
    expect(strings).toHaveLength(3);
    expect(io.unansweredI2c).toBe(4);
    io.close();
  });

  it('a silent SHT31 ignores the measure command and NACKs every read', async () => {
    const io = await openBoard({ nackReply: 'short' });
    io.sht31Silent = true;
    measure(io);
    await delay(20);
    expect(await read(io)).toEqual([]);
    io.sht31Silent = false;
    measure(io);
    await delay(20);
    expect(await read(io)).toHaveLength(6);
    io.close();
  });

  it('holds commands on a stalled line and delivers them in order; pending and transport.drain tell when they have left', async () => {
    const io = await openBoard();
    io.stallLine(40);
    measure(io);
    const reply = read(io);
    expect(io.pending).toBe(2);
    await new Promise<void>((resolve) => io.transport.drain(resolve));
    expect(io.pending).toBe(0);
    // The read arrived right behind the command, long before the conversion was done.
    expect(await reply).toEqual([0, 0, 0, 0, 0, 0]);
    io.close();
  });

  it('is lost with its cable (a close event, or silence), cannot be reopened until plugged back, then opens again', async () => {
    const cable = new SimulatedCable();
    const io = await openBoard({ cable, samplingIntervalMs: 10 });
    let reports = 0;
    io.analogRead(0, () => reports++);
    while (reports === 0) await delay(10);
    const closed = new Promise((resolve) => io.once('close', resolve));
    cable.unplug();
    await closed;
    const before = reports;
    let answered = false;
    measure(io);
    io.i2cReadOnce(0x44, 6, () => { answered = true; });
    await delay(50);
    expect(reports).toBe(before);
    expect(answered).toBe(false);
    expect(cable.plugged).toBe(false);

    const { simulation } = await makeSimulation();
    const again = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: WEIGHT, cable, path: '/dev/ttyACM0' });
    const refused = new Promise<Error>((resolve) => again.once('error', resolve));
    again.open();
    expect((await refused).message).toMatch(/No such file or directory, cannot open \/dev\/ttyACM0/);

    cable.plug();
    const back = new SimulatedBeehiveIO({ simulation, sht31Address: 0x44, weight: WEIGHT, cable, samplingIntervalMs: 10 });
    const ready = new Promise((resolve) => back.once('ready', resolve));
    back.open();
    await ready;
    let closes = 0;
    back.on('close', () => closes++);
    cable.unplug('silent');
    await delay(20);
    expect(closes).toBe(0);
    back.close();
  });

  it('can put full-scale spikes on the load cell (every Nth report)', async () => {
    const io = await openBoard({ samplingIntervalMs: 10 });
    io.loadCellSpikeEvery = 3;
    const counts: number[] = [];
    io.analogRead(0, (count) => counts.push(count));
    while (counts.length < 6) await delay(10);
    io.close();
    expect(counts[2]).toBe(1023);
    expect(counts[5]).toBe(1023);
    expect(counts[0]).toBeLessThan(1023);
  });
});

describe('HiveSimulation', () => {
  it('replays the real recording: brood-nest temperatures in summer', async () => {
    const { simulation } = await makeSimulation();
    const t = Date.UTC(2026, 5, 2, 12);
    expect(simulation.temperatureAt(t)).toBeGreaterThan(25);
    expect(simulation.temperatureAt(t)).toBeLessThan(40);
    expect(simulation.humidityAt(t)).toBeGreaterThan(20);
    // Pure function of time: the same moment gives the same value.
    expect(simulation.temperatureAt(t)).toBe(simulation.temperatureAt(t));
  });

  it('runs a swarm: pre-swarm, swarm, then the hive is lighter', async () => {
    const { simulation, clock } = await makeSimulation();
    const schedule = simulation.injectSwarm();
    expect(simulation.soundStateAt(schedule.preSwarmFrom + 1)).toBe('pre-swarm');
    expect(simulation.soundStateAt(schedule.swarmFrom + 1)).toBe('swarm');
    expect(simulation.soundStateAt(schedule.swarmUntil + 1)).toBe('normal');
    const before = simulation.weightAt(schedule.preSwarmFrom - 1);
    const after = simulation.weightAt(schedule.swarmUntil + 1);
    expect(before - after).toBeGreaterThan(2);
    expect(simulation.audioAt(clock.now(), 2205)).toHaveLength(2205);
  });
});

describe('UrbanReplay', () => {
  it('validates every row: bad, out-of-range and out-of-order rows are skipped and counted', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-replay-'));
    const file = path.join(dir, 'hive.csv');
    await writeFile(file, 'unix_s,temperature_c,humidity_pct\n1000,34.0,50\n1900,x,50\n2800,35.0,150\n900,34.5,50\n3700,36.0,60\n\n');
    const replay = new UrbanReplay(file);
    await replay.open();
    expect(replay.rows).toBe(2);
    expect(replay.rejectedRows).toBe(3);
    // Halfway between the two valid samples (t = 1000 s and 3700 s).
    expect(replay.sampleAt(2_350_000).temperature).toBeCloseTo(35, 5);
    await rm(dir, { recursive: true, force: true });
  });
});
