/**
 * The linux device as a whole: close() leaves no timer, child process or
 * port behind, whether its sensors were working or it was retrying all of
 * them (backoff timers pending).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SerialPortMock } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../../runtime/clock.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { LinuxDevice } from '../../../devices/linux/linux-device.js';
import type { AudioFrame, Reading } from '../../../devices/device.js';
import { FakeBoard, waitFor } from '../../support/fake-board.js';

let board: FakeBoard;
beforeEach(async () => { board = await FakeBoard.create(); });
afterEach(async () => { SerialPortMock.binding.reset(); await board.remove(); });

function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** What the process holds beyond `before`, once closed handles have had up to 5 s to leave the list. */
async function leftOver(before: Map<string, number>): Promise<string[]> {
  const extra = () => [...resources()].filter(([type, n]) => n > (before.get(type) ?? 0)).map(([type, n]) => `${type} +${n - (before.get(type) ?? 0)}`);
  for (let i = 0; i < 250 && extra().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return extra();
}

async function makeDevice() {
  const linux = parseConfig({
    device: {
      kind: 'linux',
      linux: {
        root: board.root,
        sensors: [
          { driver: 'ds18b20', interval: '100ms' },
          { driver: 'serial-line', port: '/dev/ttyFAKE1', key: 'co2', interval: '100ms' },
        ],
        audio: { driver: 'alsa', interval: '1s', command: await board.fakeArecord() },
        button: { line: 17, command: await board.fakeGpiomon(2) },
      },
    },
  }).device.linux;
  if (!linux) throw new Error('no linux section');
  return new LinuxDevice({
    config: linux,
    clock: new ScaledClock(),
    openSerialPort: (p, baudRate) => Promise.resolve(new SerialPortMock({ path: p, baudRate, autoOpen: false })),
  });
}

describe('linux device lifecycle', () => {
  it('closes every timer, child process and port of working sensors', async () => {
    await board.ds18b20('28-0316a2795bff', 30);
    SerialPortMock.binding.createPort('/dev/ttyFAKE1', { echo: false, record: false });
    const before = resources();
    const device = await makeDevice();
    const readings: Reading[] = [];
    const frames: AudioFrame[] = [];
    device.on('reading', (r) => readings.push(r));
    device.on('audio', (f) => frames.push(f));
    await device.open();
    await waitFor(() => readings.length > 0 && frames.length > 0, 'a reading and a frame');
    await waitFor(async () => (await import('node:fs')).existsSync(path.join(board.root, 'gpiomon.args')), 'gpiomon running');
    await device.close();
    expect(await leftOver(before)).toEqual([]);
  });

  it('closes the backoff timers of sensors that are all missing, and the node-facing stats say why', async () => {
    await writeFile(path.join(board.root, 'mic-unplugged'), '');
    await writeFile(path.join(board.root, 'gpiomon-exit'), '');
    const before = resources();
    const device = await makeDevice();
    await device.open();
    await waitFor(() => ['missing.temperature', 'missing.co2', 'missing.sound', 'missing.button'].every((k) => (device.stats()[k] ?? 0) > 0), 'every part counted missing');
    await device.close();
    expect(await leftOver(before)).toEqual([]);
  });
});
