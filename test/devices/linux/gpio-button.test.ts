/**
 * The GPIO push button through a fake `gpiomon` (a real child process) of
 * libgpiod v1 and v2: the arguments each version needs, both default output
 * formats, press/release events with contact bounce ignored, and a gpiomon
 * that exits counted and started again.
 */
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../../runtime/clock.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { gpiomonArgs, parseGpiomonLine } from '../../../devices/linux/gpio-button.js';
import { LinuxDevice } from '../../../devices/linux/linux-device.js';
import type { ButtonEvent } from '../../../devices/device.js';
import { FakeBoard, waitFor } from '../../support/fake-board.js';

let board: FakeBoard;
let device: LinuxDevice | undefined;
beforeEach(async () => { board = await FakeBoard.create(); });
afterEach(async () => { await device?.close(); device = undefined; await board.remove(); });

function buttonConfig(button: Record<string, unknown>) {
  const linux = parseConfig({ device: { kind: 'linux', linux: { root: board.root, sensors: [{ driver: 'ds18b20', interval: '1h' }], button } } }).device.linux;
  if (!linux?.button) throw new Error('no button');
  return linux;
}

describe('gpiomon output and arguments', () => {
  it('parses the asked-for "%o %e" lines of v1 (0 falling) and v2 (2 falling), and both default formats', () => {
    expect(parseGpiomonLine('17 1')).toBe('rising');
    expect(parseGpiomonLine('17 0')).toBe('falling');
    expect(parseGpiomonLine('17 2')).toBe('falling');
    expect(parseGpiomonLine('event:  RISING EDGE offset: 17 timestamp: [    1151.814356387]')).toBe('rising');
    expect(parseGpiomonLine('event: FALLING EDGE offset: 17 timestamp: [    1151.815449803]')).toBe('falling');
    expect(parseGpiomonLine('10002.907638045\trising\t"GPIO17"')).toBe('rising');
    expect(parseGpiomonLine('10002.907638045\tfalling\tgpiochip0 17')).toBe('falling');
    expect(parseGpiomonLine('gpiomon: unable to request lines')).toBeUndefined();
  });

  it('gives each libgpiod generation its own arguments', () => {
    const { button } = buttonConfig({ line: 17 });
    if (!button) throw new Error('no button');
    expect(gpiomonArgs(button, 1)).toEqual(['--line-buffered', '--format=%o %e', '--active-low', '--bias=pull-up', 'gpiochip0', '17']);
    expect(gpiomonArgs(button, 2)).toEqual(['--format=%o %e', '--active-low', '--bias', 'pull-up', '--debounce-period', '30ms', '--chip', 'gpiochip0', '17']);
  });
});

describe.each([1, 2] as const)('button through a fake gpiomon v%i', (version) => {
  it('emits press and release, ignores bounce, and restarts a gpiomon that exits', async () => {
    const command = await board.fakeGpiomon(version);
    device = new LinuxDevice({ config: buttonConfig({ line: 17, command, debounce: '200ms' }), clock: new ScaledClock() });
    const events: ButtonEvent[] = [];
    device.on('button', (e) => events.push(e));
    await device.open();
    const falling = version === 1 ? 0 : 2;
    const events_ = path.join(board.root, 'gpio-events');
    await waitFor(async () => (await readFile(path.join(board.root, 'gpiomon.args'), 'utf8').catch(() => '')).includes('17'), 'gpiomon to start');
    // A press that bounces (rising, falling, rising within 200 ms), then a clean release.
    await appendFile(events_, `17 1\n17 ${falling}\n17 1\n`);
    await waitFor(() => events.length >= 1, 'a press');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await appendFile(events_, `17 ${falling}\n`);
    await waitFor(() => events.length >= 2, 'a release');
    expect(events.map((e) => `${e.name} ${e.action}`)).toEqual(['button press', 'button release']);
    const args = JSON.parse(await readFile(path.join(board.root, 'gpiomon.args'), 'utf8')) as string[];
    expect(args.includes('--chip')).toBe(version === 2);

    // The chip goes away: gpiomon exits, is counted, and is started again when it can run.
    await rm(path.join(board.root, 'gpiomon.args'));
    await writeFile(path.join(board.root, 'gpiomon-exit'), '');
    await waitFor(() => (device?.stats()['missing.button'] ?? 0) >= 1, 'the exit counted');
    await rm(path.join(board.root, 'gpiomon-exit'));
    await waitFor(async () => (await readFile(path.join(board.root, 'gpiomon.args'), 'utf8').catch(() => '')).includes('17'), 'gpiomon to start again');
    await appendFile(events_, '17 1\n');
    await waitFor(() => events.length >= 3, 'a press after the restart');
    expect(events[2]?.action).toBe('press');
  });
});

describe('a gpiomon that cannot run', () => {
  it('is counted and reported, and the node keeps going', async () => {
    device = new LinuxDevice({ config: buttonConfig({ line: 4, command: path.join(board.root, 'no-such-gpiomon') }), clock: new ScaledClock() });
    const warnings: Error[] = [];
    device.on('warning', (w) => warnings.push(w));
    await device.open();
    await waitFor(() => (device?.stats()['missing.button'] ?? 0) >= 1, 'the failure counted');
    expect(warnings.some((w) => /--version failed \(apt install gpiod\)/.test(w.message))).toBe(true);
  });
});
