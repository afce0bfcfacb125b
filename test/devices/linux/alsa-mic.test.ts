/**
 * The ALSA microphone through a fake `arecord` (a real child process that
 * streams a 100 Hz sine as S16_LE): the arguments, the conversion to
 * Float32 frames decimated to 2205 Hz, and an unplugged microphone (arecord
 * exits) counted, retried with backoff and picked up again.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../../runtime/clock.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { Decimator } from '../../../devices/linux/alsa-mic.js';
import { LinuxDevice } from '../../../devices/linux/linux-device.js';
import type { AudioFrame } from '../../../devices/device.js';
import { FakeBoard, waitFor } from '../../support/fake-board.js';

let board: FakeBoard;
let device: LinuxDevice | undefined;
beforeEach(async () => { board = await FakeBoard.create(); });
afterEach(async () => { await device?.close(); device = undefined; await board.remove(); });

describe('ALSA microphone', () => {
  it('runs arecord with the configured device and format, and delivers 1 s Float32 frames at 2205 Hz', async () => {
    const command = await board.fakeArecord();
    const config = parseConfig({ device: { kind: 'linux', linux: { root: board.root, audio: { driver: 'alsa', device: 'plughw:1,0', interval: '1s', command } } } });
    device = new LinuxDevice({ config: config.device.linux ?? (() => { throw new Error('no linux'); })(), clock: new ScaledClock() });
    expect(device.hasAudio).toBe(true);
    const frames: AudioFrame[] = [];
    device.on('audio', (f) => frames.push(f));
    await device.open();
    await waitFor(() => frames.length >= 1, 'a frame');
    const args = JSON.parse(await readFile(path.join(board.root, 'arecord.args'), 'utf8')) as string[];
    expect(args).toEqual(['-q', '-D', 'plughw:1,0', '-f', 'S16_LE', '-r', '44100', '-c', '1', '-t', 'raw']);
    const frame = frames[0] as AudioFrame;
    expect(frame.sampleRate).toBe(2205);
    expect(frame.samples).toHaveLength(2205);
    // The 100 Hz sine of amplitude 0.5 passes the low-pass filter: peak near 0.5, a full cycle every 22 samples.
    const peak = Math.max(...frame.samples.slice(400));
    expect(peak).toBeGreaterThan(0.45);
    expect(peak).toBeLessThan(0.55);
    const crossings = frame.samples.slice(400).filter((s, i, a) => i > 0 && (a[i - 1] ?? 0) < 0 && s >= 0).length;
    expect(crossings).toBeGreaterThanOrEqual(80);
    expect(crossings).toBeLessThanOrEqual(82);
  });

  it('counts an unplugged microphone, retries it with backoff, and picks it up again', async () => {
    const command = await board.fakeArecord();
    await board.write('mic-unplugged', '');
    const config = parseConfig({ device: { kind: 'linux', linux: { root: board.root, audio: { driver: 'alsa', interval: '1s', command } } } });
    device = new LinuxDevice({ config: config.device.linux ?? (() => { throw new Error('no linux'); })(), clock: new ScaledClock() });
    const frames: AudioFrame[] = [];
    const warnings: Error[] = [];
    device.on('audio', (f) => frames.push(f));
    device.on('warning', (w) => warnings.push(w));
    await device.open();
    await waitFor(() => (device?.stats()['missing.sound'] ?? 0) >= 2, 'two failed starts');
    expect(warnings[0]?.message).toMatch(/arecord on default stopped \(exit 1: arecord: main:850: audio open error/);
    expect(frames).toHaveLength(0);
    await rm(path.join(board.root, 'mic-unplugged'));
    await waitFor(() => frames.length >= 1, 'a frame after the microphone returns', 20_000);
    expect(frames[0]?.samples.every((s) => Number.isFinite(s))).toBe(true);
  });

  it('decimates without gain at low frequency and removes what would fold back', () => {
    const measure = (hz: number) => {
      const d = new Decimator(20);
      const out: number[] = [];
      for (let n = 0; n < 44100; n++) {
        const y = d.push(Math.sin((2 * Math.PI * hz * n) / 44100));
        if (y !== undefined) out.push(y);
      }
      return Math.max(...out.slice(100).map(Math.abs));
    };
    expect(measure(200)).toBeGreaterThan(0.97);
    expect(measure(3000)).toBeLessThan(0.02); // would alias to 795 Hz without the filter
  });
});
