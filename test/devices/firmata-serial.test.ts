/**
 * The Firmata path as `device.kind: firmata` runs it: serialport 13's
 * SerialPort (its hardware binding swapped for @serialport/binding-mock),
 * firmata.js and johnny-five, against StandardFirmata answering for a
 * simulated board at the far end of the mock port. No serialport 8: the port
 * firmata.js writes to is serialport 13's, johnny-five's own serialport
 * resolves to 13 (package.json `overrides`), and its native v8 binding is not
 * installed at all.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../runtime/clock.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import type { Reading } from '../../devices/device.js';
import { BeehiveBoard } from '../../devices/drivers/beehive-board.js';
import { serialFirmata, type FirmataPlugin } from '../../devices/drivers/serial-firmata.js';
import { SimulatedBeehiveIO } from '../../devices/io/simulated-beehive-io.js';
import { HiveSimulation } from '../../devices/sim/hive-simulation.js';
import { HiveSoundBank } from '../../devices/sim/hive-sound-bank.js';
import { UrbanReplay } from '../../devices/sim/urban-replay.js';
import { ErrorCodes, isApiaryError } from '../../runtime/errors.js';
import { FirmataSerialMock } from '../support/firmata-serial-mock.js';
import { waitFor } from '../support/fake-board.js';

const BOARD = '/dev/ttyACM0';
let device: BeehiveBoard | undefined;
afterEach(async () => { await device?.close(); device = undefined; });

function firmataBoard(options: { port?: string; boardPath?: string; others?: string[]; listFails?: string; devDir?: string } = {}) {
  const speed = 600;
  const config = parseConfig({
    device: {
      kind: 'firmata',
      ...(options.port ? { port: options.port } : {}),
      sensors: { temperature: { interval: '30s' }, humidity: { interval: '30s' }, weight: { interval: '30s' }, sound: { enabled: false } },
    },
  }).device;
  const clock = new ScaledClock({ speed });
  const replay = new UrbanReplay();
  const simulation = new HiveSimulation({ clock, replay, sounds: new HiveSoundBank(), seed: 1, startWeightKg: 38, preSwarmMs: 60_000, swarmMs: 60_000 });
  const serial = new FirmataSerialMock(options.boardPath ?? BOARD, () => new SimulatedBeehiveIO({ simulation, sht31Address: config.sht31Address, weight: config.sensors.weight }), options.others);
  const plugins: FirmataPlugin[] = [];
  const listFails = options.listFails;
  const binding = listFails === undefined ? serial.binding : { ...serial.binding, list: () => Promise.reject(new Error(listFails)) };
  const open = serialFirmata({ path: config.port, binding, detectTries: 1, devDir: options.devDir });
  device = new BeehiveBoard({
    config,
    clock,
    kind: 'firmata',
    prepare: () => replay.open(),
    timing: { silenceMs: 300, reconnectMs: 50, reconnectMaxMs: 200, readyTimeoutMs: 5_000, i2cReadTimeoutMs: 400 },
    io: async () => {
      const plugin = await open();
      plugins.push(plugin);
      return plugin;
    },
  });
  const log = { readings: [] as Reading[], states: [] as string[], warnings: [] as Error[] };
  device.on('reading', (r) => log.readings.push(r));
  device.on('state', (s) => log.states.push(s));
  device.on('warning', (w) => log.warnings.push(w));
  return { device, serial, plugins, log, stat: (name: string) => device?.stats()[name] ?? 0 };
}

const all = (readings: Reading[]) => ['temperature', 'humidity', 'weight'].every((c) => readings.some((r) => r.channel === c));

describe('Firmata over serialport 13', () => {
  it('finds the board, talks StandardFirmata through serialport 13\'s SerialPort at 57600 baud, and reads every channel', async () => {
    const { device, serial, plugins, log } = firmataBoard({ others: ['/dev/ttyS0'] });
    await device.open();
    await waitFor(() => all(log.readings), 'readings of every channel');
    expect(device.state).toBe('connected');
    // Auto-detection passed over the built-in UART for the USB board.
    expect(serial.opens).toEqual([{ path: BOARD, baudRate: 57_600 }]);
    const plugin = plugins[0];
    expect(plugin?.transport).toBeInstanceOf(SerialPort);
    expect(plugin?.transport.path).toBe(BOARD);
    expect(plugin?.port).toBe(BOARD);
    expect((plugin as unknown as { firmware: { name: string } }).firmware.name).toBe('StandardFirmata.ino');
    expect(serial.written).toBeGreaterThan(0);
    const weight = log.readings.find((r) => r.channel === 'weight');
    expect(weight?.value).toBeGreaterThan(30);
  });

  it('a board lost from its USB port: disconnected, nothing published, reopened with backoff on the same path, resumes', async () => {
    const { device, serial, plugins, log, stat } = firmataBoard();
    await device.open();
    await waitFor(() => all(log.readings), 'readings of every channel');
    serial.unplug();
    await waitFor(() => device.state === 'disconnected', 'the board found gone');
    const lostAt = log.readings.length;
    await waitFor(() => stat('board.reconnect_failed') >= 2, 'two failed attempts to reopen it');
    expect(log.readings.length).toBe(lostAt);
    expect(plugins[0]?.transport.isOpen).toBe(false);
    serial.plug();
    await waitFor(() => device.state === 'connected', 'the board back');
    await waitFor(() => all(log.readings.slice(lostAt)), 'readings of every channel after it came back');
    await device.close();
    expect(log.states).toEqual(['connected', 'disconnected', 'connected', 'disconnected']);
    expect(stat('board.lost')).toBe(1);
    expect(stat('board.reconnected')).toBe(1);
    expect(log.warnings.some((w) => isApiaryError(w, ErrorCodes.DEVICE_DISCONNECTED) && w.message.includes(BOARD))).toBe(true);
    // Every reopening, failed or not, was of the path auto-detection chose, and each connection's port is closed.
    expect(new Set(serial.opens.map((o) => o.path))).toEqual(new Set([BOARD]));
    expect(serial.opens.length).toBeGreaterThanOrEqual(3);
    expect(plugins.every((p) => !p.transport.isOpen)).toBe(true);
  });

  it('no port that looks like a board: a clear error naming device.port', async () => {
    const { device, serial } = firmataBoard({ boardPath: '/dev/ttyS1', others: ['/dev/ttyS0'] });
    const err: unknown = await device.open().catch((e: unknown) => e);
    expect(isApiaryError(err, ErrorCodes.DEVICE_OPEN_FAILED)).toBe(true);
    expect((err as Error).message).toMatch(/device\.port is not set and no serial port looks like a Firmata board.*ports seen: \/dev\/ttyS0, \/dev\/ttyS1/);
    expect(serial.opens).toEqual([]);
  });

  it('serialport cannot list the ports (no udevadm on the image): the board is found among the device nodes, or the error says why not', async () => {
    const dev = mkdtempSync(path.join(os.tmpdir(), 'apiary-dev-'));
    try {
      for (const name of ['ttyS0', 'ttyACM3']) writeFileSync(path.join(dev, name), '');
      const { device, serial, log } = firmataBoard({ boardPath: path.join(dev, 'ttyACM3'), listFails: 'spawn udevadm ENOENT', devDir: dev });
      await device.open();
      await waitFor(() => all(log.readings), 'readings of every channel');
      expect(serial.opens.map((o) => o.path)).toEqual([path.join(dev, 'ttyACM3')]);
      await device.close();
      rmSync(path.join(dev, 'ttyACM3'));
      const none = firmataBoard({ boardPath: path.join(dev, 'ttyACM3'), listFails: 'spawn udevadm ENOENT', devDir: dev });
      const err: unknown = await none.device.open().catch((e: unknown) => e);
      expect(isApiaryError(err, ErrorCodes.DEVICE_OPEN_FAILED)).toBe(true);
      expect((err as Error).message).toContain(`serialport could not list the ports: spawn udevadm ENOENT; no ttyACM* or ttyUSB* in ${dev} either`);
    } finally {
      rmSync(dev, { recursive: true, force: true });
    }
  });

  it('a configured port that does not exist: the open fails naming it', async () => {
    const { device } = firmataBoard({ port: '/dev/ttyACM7' });
    const err: unknown = await device.open().catch((e: unknown) => e);
    expect(isApiaryError(err, ErrorCodes.DEVICE_OPEN_FAILED)).toBe(true);
    expect((err as Error).message).toMatch(/cannot open the firmata board on \/dev\/ttyACM7: .*does not exist/);
  });

  it('johnny-five and firmata resolve serialport 13, and serialport 8\'s native binding is not installed', () => {
    const require = createRequire(import.meta.url);
    const versionFrom = (from: string) => {
      const file = require.resolve('serialport/package.json', { paths: [path.dirname(require.resolve(`${from}/package.json`))] });
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    };
    expect(versionFrom('johnny-five')).toMatch(/^13\./);
    expect(versionFrom('firmata')).toMatch(/^13\./);
    expect(() => require.resolve('@serialport/bindings/package.json')).toThrow();
  });
});
