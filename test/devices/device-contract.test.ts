/**
 * The shared contract every Device implementation must meet. Each
 * implementation that can run without hardware is listed in `implementations`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../runtime/clock.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import { createDevice } from '../../devices/create-device.js';
import type { AudioFrame, Device, Reading } from '../../devices/device.js';
import { BeehiveBoard } from '../../devices/drivers/beehive-board.js';
import { SimulatedBeehiveIO, SimulatedCable } from '../../devices/io/simulated-beehive-io.js';
import { HiveSimulation } from '../../devices/sim/hive-simulation.js';
import { HiveSoundBank } from '../../devices/sim/hive-sound-bank.js';
import { UrbanReplay } from '../../devices/sim/urban-replay.js';
import type { IoPlugin } from '../../devices/drivers/board-link.js';
import { ErrorCodes, isApiaryError } from '../../runtime/errors.js';
import { FirmataWire, firmataClient } from '../support/firmata-wire.js';
import { FakeBoard } from '../support/fake-board.js';

// The linux device reads a fake board: a DS18B20, an SHT3x through hwmon, an HX711 through IIO, a fake arecord.
const board = await FakeBoard.create();
await board.ds18b20('28-0316a2795bff', 34.5);
await board.hwmon(2, 'sht3x', { temp1_input: 34000, humidity1_input: 58500 });
await board.iio(0, 'hx711', { in_voltage0_raw: 0x800000 + 800_000 });
const arecord = await board.fakeArecord();
afterAll(() => board.remove());

const implementations: { name: string; make: () => Device }[] = [
  {
    name: 'simulated-beehive (johnny-five over SimulatedBeehiveIO)',
    make: () => {
      const config = parseConfig({
        device: {
          kind: 'simulated-beehive',
          simulation: { speed: 600, preSwarm: '1m', swarm: '1m' },
          sensors: { temperature: { interval: '30s' }, humidity: { interval: '30s' }, weight: { interval: '30s' }, sound: { interval: '10s' } },
        },
      });
      return createDevice(config.device, new ScaledClock({ speed: 600 }));
    },
  },
  {
    name: 'linux (DS18B20, SHT3x over hwmon, HX711 over IIO, arecord, on a fake sysfs tree)',
    make: () => {
      const config = parseConfig({
        device: {
          kind: 'linux',
          linux: {
            root: board.root,
            sensors: [
              { driver: 'ds18b20', interval: '100ms' },
              { driver: 'hwmon', name: 'sht3x', quantity: 'humidity', interval: '100ms' },
              { driver: 'hx711-iio', kgPerCount: 0.00005, offsetKg: -2, interval: '100ms', compensation: { channel: 'temperature', kgPerDegree: 0.01 } },
            ],
            audio: { driver: 'alsa', device: 'plughw:1,0', interval: '1s', command: arecord },
          },
        },
      });
      return createDevice(config.device, new ScaledClock());
    },
  },
];

function collect(device: Device, until: (readings: Reading[], frames: AudioFrame[]) => boolean): Promise<{ readings: Reading[]; frames: AudioFrame[] }> {
  const readings: Reading[] = [];
  const frames: AudioFrame[] = [];
  return new Promise((resolve) => {
    const check = () => { if (until(readings, frames)) resolve({ readings, frames }); };
    device.on('reading', (r) => { readings.push(r); check(); });
    device.on('audio', (f) => { frames.push(f); check(); });
  });
}

describe.each(implementations)('Device contract: $name', ({ make }) => {
  it('emits readings for every declared channel, in range, with units and times', async () => {
    const device = make();
    const done = collect(device, (readings) => device.channels.every((c) => readings.filter((r) => r.channel === c.name).length >= 3));
    await device.open();
    const { readings } = await done;
    await device.close();
    expect(device.channels.map((c) => c.name)).toEqual(['temperature', 'humidity', 'weight']);
    for (const channel of device.channels) {
      const mine = readings.filter((r) => r.channel === channel.name);
      expect(mine.every((r) => r.unit === channel.unit && Number.isFinite(r.value) && r.t > 0)).toBe(true);
    }
    const temps = readings.filter((r) => r.channel === 'temperature').map((r) => r.value);
    expect(Math.min(...temps)).toBeGreaterThan(10);
    expect(Math.max(...temps)).toBeLessThan(45);
    const weights = readings.filter((r) => r.channel === 'weight').map((r) => r.value);
    expect(Math.min(...weights)).toBeGreaterThan(30);
  });

  it('stops emitting after close, and can be closed without leaking timers', async () => {
    const device = make();
    await device.open();
    await device.close();
    let after = 0;
    device.on('reading', () => after++);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(after).toBe(0);
  });

  it('delivers audio frames of the declared length', async () => {
    const device = make();
    expect(device.hasAudio).toBe(true);
    const done = collect(device, (_r, frames) => frames.length >= 2);
    await device.open();
    const { frames } = await done;
    await device.close();
    expect(frames[0]?.samples.length).toBe(frames[0]?.sampleRate);
    expect(frames[0]?.samples.every((s) => Number.isFinite(s))).toBe(true);
  });

  it('turns an injected swarm into swarm sound (simulated devices only)', async () => {
    const device = make();
    if (!device.simulation) return;
    await device.open();
    device.simulation.inject('swarm');
    expect(device.simulation.state().sound).toBe('pre-swarm');
    await device.close();
  });
});

describe.each(implementations)('Device contract, state and start-up: $name', ({ make }) => {
  it('says it is connected once open and disconnected after close, with a state event each time', async () => {
    const device = make();
    const states: string[] = [];
    device.on('state', (state) => states.push(state));
    expect(device.state).toBe('disconnected');
    await device.open();
    expect(device.state).toBe('connected');
    await device.close();
    expect(device.state).toBe('disconnected');
    expect(states).toEqual(['connected', 'disconnected']);
  });

  it('reports no missing or out-of-range weight at start-up: the first weight waits for the first ADC report', async () => {
    const device = make();
    const warnings: string[] = [];
    device.on('warning', (err) => warnings.push(err.message));
    const done = collect(device, (readings) => readings.filter((r) => r.channel === 'weight').length >= 2);
    await device.open();
    const { readings } = await done;
    await device.close();
    expect(readings.find((r) => r.channel === 'weight')?.value).toBeGreaterThan(30);
    expect(warnings.filter((w) => /weight|outside the part's range/.test(w))).toEqual([]);
  });
});

/**
 * The Firmata path (johnny-five over the simulated board, which answers as StandardFirmata 2.4
 * does) with the faults met on real hardware: a pulled cable, a hung board, a silent sensor,
 * interference on the load cell.
 */
describe('Device contract, Firmata path: a lost board, a silent sensor, a noisy load cell', () => {
  function firmataBoard(options: { sensors?: Record<string, unknown>; spikeEvery?: number; overFirmataJs?: boolean } = {}) {
    const speed = 600;
    const config = parseConfig({
      device: {
        kind: 'firmata',
        sensors: { temperature: { interval: '30s' }, humidity: { interval: '30s' }, weight: { interval: '30s' }, sound: { enabled: false }, ...options.sensors },
      },
    }).device;
    const clock = new ScaledClock({ speed });
    const replay = new UrbanReplay();
    const simulation = new HiveSimulation({ clock, replay, sounds: new HiveSoundBank(), seed: 1, startWeightKg: 38, preSwarmMs: 60_000, swarmMs: 60_000 });
    const cable = new SimulatedCable();
    const ios: SimulatedBeehiveIO[] = [];
    const wires: FirmataWire[] = [];
    const clients: IoPlugin[] = [];
    const device = new BeehiveBoard({
      config,
      clock,
      kind: 'firmata',
      prepare: () => replay.open(),
      timing: { silenceMs: 300, reconnectMs: 50, reconnectMaxMs: 200, readyTimeoutMs: 2_000, i2cReadTimeoutMs: 400 },
      io: () => {
        const io = new SimulatedBeehiveIO({ simulation, sht31Address: config.sht31Address, weight: config.sensors.weight, cable });
        io.loadCellSpikeEvery = options.spikeEvery ?? 0;
        ios.push(io);
        if (!options.overFirmataJs) return io;
        const wire = new FirmataWire(io, () => cable.plugged);
        wires.push(wire);
        const client = firmataClient(wire);
        clients.push(client);
        return client;
      },
    });
    const log = { readings: [] as Reading[], states: [] as string[], warnings: [] as Error[] };
    device.on('reading', (r) => log.readings.push(r));
    device.on('state', (s) => log.states.push(s));
    device.on('warning', (w) => log.warnings.push(w));
    return { device, cable, ios, wires, clients, log, stat: (name: string) => device.stats()[name] ?? 0 };
  }

  const channelsIn = (readings: Reading[]) => new Set(readings.map((r) => r.channel));
  const all = (readings: Reading[], names = ['temperature', 'humidity', 'weight']) => names.every((n) => channelsIn(readings).has(n));

  /** Pulls the cable: disconnected at once, nothing published while gone (`failedTries` reopenings fail), all channels again once it is back. */
  async function pullCableAndPlugBack({ device, cable, log, stat }: ReturnType<typeof firmataBoard>, failedTries: number): Promise<void> {
    cable.unplug();
    expect(device.state).toBe('disconnected');
    const lostAt = log.readings.length;
    await until(() => stat('board.reconnect_failed') >= failedTries, `${failedTries} failed attempts to reopen the board`);
    expect(log.readings.length).toBe(lostAt);
    cable.plug();
    await until(() => device.state === 'connected', 'the board back');
    expect(log.readings.length).toBe(lostAt);
    await until(() => all(log.readings.slice(lostAt)), 'readings of every channel after the board came back');
  }

  it('a pulled cable: disconnected at once, nothing published while gone, reopened with backoff, resumes when the board is back', async () => {
    const board = firmataBoard();
    const { device, log, stat } = board;
    await device.open();
    await until(() => all(log.readings), 'readings of every channel');
    await pullCableAndPlugBack(board, 2);
    await device.close();
    expect(log.states).toEqual(['connected', 'disconnected', 'connected', 'disconnected']);
    expect(stat('board.lost')).toBe(1);
    expect(stat('board.reconnected')).toBe(1);
    expect(log.warnings.some((w) => isApiaryError(w, ErrorCodes.DEVICE_DISCONNECTED))).toBe(true);
  });

  it('a hung board (no close, no reports): found by its silence, and no weight is repeated meanwhile', async () => {
    const { device, cable, log, stat } = firmataBoard({ sensors: { temperature: { enabled: false }, humidity: { enabled: false } } });
    await device.open();
    await until(() => all(log.readings, ['weight']), 'a weight reading');
    cable.unplug('silent');
    const lostAt = log.readings.length;
    await until(() => device.state === 'disconnected', 'the board found gone');
    expect(log.readings.length).toBe(lostAt);
    expect(stat('missing.weight')).toBeGreaterThan(0); // the intervals while it was silent: counted, not repeated
    cable.plug();
    await until(() => all(log.readings.slice(lostAt), ['weight']), 'weight after the board came back');
    await device.close();
    expect(log.states).toEqual(['connected', 'disconnected', 'connected', 'disconnected']);
  });

  it('a hung board with only the SHT31: found by its unanswered reads, whose listeners are all removed', async () => {
    const { device, cable, ios, log, stat } = firmataBoard({ sensors: { weight: { enabled: false } } });
    await device.open();
    await until(() => all(log.readings, ['temperature', 'humidity']), 'temperature and humidity');
    cable.unplug('silent');
    await until(() => device.state === 'disconnected', 'the board found gone');
    expect(stat('sht31.timeout')).toBeGreaterThanOrEqual(2);
    expect(ios[0]?.listenerCount('I2C-reply-68-0')).toBe(0);
    const lostAt = log.readings.length;
    cable.plug();
    await until(() => all(log.readings.slice(lostAt), ['temperature', 'humidity']), 'readings after the board came back');
    await device.close();
  });

  it('a silent SHT31 on a live board: its NACK replies are counted and nothing is published for it; it resumes when it answers', async () => {
    const { device, ios, log, stat } = firmataBoard();
    await device.open();
    await until(() => all(log.readings), 'readings of every channel');
    const board = ios[0] as SimulatedBeehiveIO;
    board.sht31Silent = true;
    await until(() => stat('sht31.nack') >= 1, 'a NACK');
    const silentAt = log.readings.length;
    await until(() => stat('sht31.nack') >= 3 && log.readings.slice(silentAt).some((r) => r.channel === 'weight'), 'more NACKs, and weight still read');
    expect(log.readings.slice(silentAt).filter((r) => r.channel !== 'weight')).toEqual([]);
    expect(stat('firmata.strings')).toBeGreaterThanOrEqual(3);
    expect(device.state).toBe('connected');
    board.sht31Silent = false;
    const backAt = log.readings.length;
    await until(() => all(log.readings.slice(backAt), ['temperature', 'humidity']), 'the SHT31 read again');
    await device.close();
  });

  it('weight is the median of the ADC reports since the last reading: spikes on the load cell do not reach it, and its spread is reported', async () => {
    const { device, log, stat } = firmataBoard({ sensors: { temperature: { enabled: false }, humidity: { enabled: false }, weight: { interval: '5m' } }, spikeEvery: 3 });
    await device.open();
    await until(() => log.readings.length >= 6, 'six weight readings');
    await device.close();
    const weights = log.readings.map((r) => r.value);
    // One sample in three reads full scale (102.3 kg): a single sample would show it in a third of the readings.
    expect(weights.filter((kg) => kg < 30 || kg > 60)).toEqual([]);
    expect(stat('weight.reports')).toBeGreaterThan(2);
    expect(stat('weight.spread_kg')).toBeGreaterThan(50);
  });

  it('over firmata.js and the StandardFirmata protocol: readings, a silent SHT31\'s "too few bytes", a pulled cable and its return', async () => {
    const board = firmataBoard({ overFirmataJs: true });
    const { device, ios, clients, log, stat } = board;
    await device.open();
    await until(() => all(log.readings), 'readings of every channel over the wire');
    expect((clients[0] as unknown as { firmware: { name: string } }).firmware.name).toBe('StandardFirmata.ino');

    (ios[0] as SimulatedBeehiveIO).sht31Silent = true;
    await until(() => stat('sht31.nack') >= 1, 'a NACK reported by the firmware');
    const silentAt = log.readings.length;
    await until(() => stat('sht31.nack') >= 3 && log.readings.slice(silentAt).some((r) => r.channel === 'weight'), 'more NACKs');
    expect(log.readings.slice(silentAt).filter((r) => r.channel !== 'weight')).toEqual([]);
    expect(stat('firmata.strings')).toBeGreaterThanOrEqual(3);
    (ios[0] as SimulatedBeehiveIO).sht31Silent = false;

    await pullCableAndPlugBack(board, 1);
    await device.close();
    expect(log.states).toEqual(['connected', 'disconnected', 'connected', 'disconnected']);
    expect(clients.every((c) => c.listenerCount('I2C-reply-68-0') === 0)).toBe(true);
  });

  it('over firmata.js: a stalled line does not make the SHT31 read before its conversion is done', async () => {
    const { device, wires, log, stat } = firmataBoard({ overFirmataJs: true, sensors: { weight: { enabled: false } } });
    await device.open();
    await until(() => all(log.readings, ['temperature']), 'a temperature reading');
    const from = log.readings.length;
    // The line stops for 40 ms in every 80: a command often leaves long after its i2cWrite call.
    const staller = setInterval(() => wires.at(-1)?.stall(40), 80);
    try {
      await until(() => log.readings.slice(from).filter((r) => r.channel === 'temperature').length >= 5, 'temperature readings on a stalled line');
    } finally {
      clearInterval(staller);
    }
    await device.close();
    expect(log.warnings.map((w) => w.message)).toEqual([]);
    expect(stat('sht31.nack')).toBe(0);
    expect(stat('failed.temperature')).toBe(0);
  });
});

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
