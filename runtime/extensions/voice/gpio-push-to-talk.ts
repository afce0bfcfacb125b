/**
 * Push-to-talk on a GPIO button, through libgpiod's `gpiomon` (Debian package
 * `gpiod`): the kernel's GPIO character device, no sysfs, no native addon.
 * A button wired from the pin to ground with the pull-up on (the usual
 * wiring) reads low while pressed, so the line is watched active-low and a
 * press is a rising edge.
 *
 * gpiomon's command line changed between libgpiod 1.6 (Debian 12) and 2.x
 * (Debian 13, Raspberry Pi OS Trixie); `gpiomon --version` tells which:
 *   v1: gpiomon -b -l -B pull-up -r -F %e <chip> <offset>     (-b: line-buffered stdout)
 *   v2: gpiomon -c <chip> -l -b pull-up -e rising -p 20ms -F %e <offset>
 * With `-F %e` each event is one line: 1 for a rising edge (v1 and v2).
 * libgpiod 2's gpiomon has no line-buffered option and does not flush, so
 * into a pipe its events would wait in a 4 KiB stdio buffer: it is run under
 * coreutils' `stdbuf -oL`.
 * Contacts bounce: presses closer than `debounceMs` are one press.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Counters } from '../../counters.js';
import type { Logger } from '../../log.js';

export interface PushToTalkOptions {
  /** gpiochip name or number: `gpiochip0` on a Raspberry Pi. */
  readonly chip: string;
  readonly line: number;
  readonly debounceMs: number;
  /** The gpiomon binary; `gpiomon` on PATH by default. */
  readonly gpiomon?: string;
  readonly onPress: () => void;
  readonly counters: Counters;
  readonly logger: Logger;
}

export type GpiomonVersion = 1 | 2;

/** The major version of libgpiod that `gpiomon --version` printed ("gpiomon (libgpiod) v1.6.3"), or undefined. */
export function parseGpiomonVersion(text: string): GpiomonVersion | undefined {
  const match = /libgpiod\)?\s+v?(\d+)\./.exec(text);
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 || major === 2 ? major : undefined;
}

export function gpiomonArgs(version: GpiomonVersion, chip: string, line: number): string[] {
  return version === 1
    ? ['-b', '-l', '-B', 'pull-up', '-r', '-F', '%e', chip, String(line)]
    : ['-c', chip, '-l', '-b', 'pull-up', '-e', 'rising', '-p', '20ms', '-F', '%e', String(line)];
}

export class GpioPushToTalk {
  private child: ChildProcess | undefined;
  private stopped = false;
  private lastPress = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: PushToTalkOptions) {}

  async start(): Promise<void> {
    const binary = this.options.gpiomon ?? 'gpiomon';
    const versionText = await new Promise<string>((resolve, reject) => {
      execFile(binary, ['--version'], { timeout: 5_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${binary} --version failed: ${err.message} (install it: sudo apt install gpiod)`)) : resolve(`${stdout}${stderr}`)));
    });
    const version = parseGpiomonVersion(versionText);
    if (version === undefined) throw new Error(`${binary} --version printed "${versionText.split('\n')[0] ?? ''}", not libgpiod 1.x or 2.x`);
    if (this.stopped) return;
    const args = gpiomonArgs(version, this.options.chip, this.options.line);
    const child = version === 1 ? spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('stdbuf', ['-oL', binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = `${stderr}${chunk.toString('utf8')}`.slice(-2_000); });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => this.onLine(line.trim()));
    child.once('error', (err) => this.options.logger.warn({ err: err.message }, 'push-to-talk: gpiomon failed to start'));
    child.once('exit', (code, signal) => {
      if (this.stopped) return;
      this.options.counters.increment('voice.trigger.gpio_exits');
      this.options.logger.warn({ code, signal, stderr: stderr.trim() }, 'push-to-talk: gpiomon exited; the button does nothing until the node restarts');
    });
    this.options.logger.info({ chip: this.options.chip, line: this.options.line, libgpiod: version }, 'push-to-talk button watched');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  private onLine(line: string): void {
    if (line !== '1') {
      // Only rising edges are asked for; anything else is not a press.
      if (line !== '') this.options.counters.increment('voice.trigger.gpio_ignored');
      return;
    }
    const now = performance.now();
    if (now - this.lastPress < this.options.debounceMs) return;
    this.lastPress = now;
    this.options.counters.increment('voice.trigger.gpio_presses');
    this.options.onPress();
  }
}
