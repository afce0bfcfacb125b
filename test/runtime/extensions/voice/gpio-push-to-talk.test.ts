/**
 * The button through the same interface real hardware uses: a `gpiomon`
 * process and its output. The stand-in gpiomon is a shell script that prints
 * the version of libgpiod it plays, records its arguments, and prints the
 * edge events the test writes into a FIFO.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../../runtime/counters.js';
import { createLogger } from '../../../../runtime/log.js';
import { GpioPushToTalk, gpiomonArgs, parseGpiomonVersion } from '../../../../runtime/extensions/voice/gpio-push-to-talk.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function fakeGpiomon(version: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-gpiomon-'));
  dirs.push(dir);
  const fifo = path.join(dir, 'events');
  execFileSync('mkfifo', [fifo]);
  const script = path.join(dir, 'gpiomon');
  await writeFile(script, [
    '#!/bin/sh',
    `if [ "$1" = "--version" ]; then echo "gpiomon (libgpiod) ${version}"; exit 0; fi`,
    `echo "$@" > "${path.join(dir, 'args')}"`,
    `exec cat "${fifo}"`,
    '',
  ].join('\n'));
  await chmod(script, 0o755);
  return { script, fifo, args: () => readFile(path.join(dir, 'args'), 'utf8').then((t) => t.trim()) };
}

async function waitFor<T>(get: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('push-to-talk on a GPIO button (gpiomon)', () => {
  it('reads the libgpiod version from gpiomon --version', () => {
    expect(parseGpiomonVersion('gpiomon (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski')).toBe(1);
    expect(parseGpiomonVersion('gpiomon (libgpiod) v2.1.3')).toBe(2);
    expect(parseGpiomonVersion('gpiomon (libgpiod) v3.0')).toBeUndefined();
    expect(parseGpiomonVersion('command not found')).toBeUndefined();
  });

  it('watches the line active-low with the pull-up, rising edges only, in either command-line dialect', () => {
    expect(gpiomonArgs(1, 'gpiochip0', 17)).toEqual(['-b', '-l', '-B', 'pull-up', '-r', '-F', '%e', 'gpiochip0', '17']);
    expect(gpiomonArgs(2, 'gpiochip0', 17)).toEqual(['-c', 'gpiochip0', '-l', '-b', 'pull-up', '-e', 'rising', '-p', '20ms', '-F', '%e', '17']);
  });

  it.each([['v1.6.3', '-b -l -B pull-up -r -F %e gpiochip0 17'], ['v2.1.3', '-c gpiochip0 -l -b pull-up -e rising -p 20ms -F %e 17']])(
    'libgpiod %s: a press is one listen, a bounce within debounceMs is not another, and stop ends gpiomon',
    async (version, expectedArgs) => {
      const gpio = await fakeGpiomon(version);
      const counters = new Counters();
      let presses = 0;
      const button = new GpioPushToTalk({ chip: 'gpiochip0', line: 17, debounceMs: 60_000, gpiomon: gpio.script, onPress: () => { presses += 1; }, counters, logger: createLogger('silent') });
      await button.start();
      const fifo = await open(gpio.fifo, 'w');
      try {
        await fifo.write('1\n1\n1\n');
        await waitFor(() => (presses > 0 ? presses : undefined), 'the press');
        await fifo.write('garbage\n');
        await waitFor(() => (counters.get('voice.trigger.gpio_ignored') > 0 ? true : undefined), 'the ignored line');
        expect(presses).toBe(1); // three edges inside the debounce window
        expect(counters.get('voice.trigger.gpio_presses')).toBe(1);
        expect(await gpio.args()).toBe(expectedArgs);
      } finally {
        await button.stop();
        await fifo.close();
      }
      expect(counters.get('voice.trigger.gpio_exits')).toBe(0); // a stop is not a crash
    },
  );

  it('fails to start, saying why, when gpiomon is not libgpiod', async () => {
    const gpio = await fakeGpiomon('v9.0');
    const button = new GpioPushToTalk({ chip: 'gpiochip0', line: 17, debounceMs: 100, gpiomon: gpio.script, onPress: () => undefined, counters: new Counters(), logger: createLogger('silent') });
    await expect(button.start()).rejects.toThrow(/not libgpiod 1.x or 2.x/);
  });
});
