/**
 * A push button on a GPIO line, watched by libgpiod's `gpiomon` (package
 * gpiod), so no native addon. The two libgpiod generations differ:
 * - v1 (Debian 12): `gpiomon [opts] <chip> <offset>`, `-b` = line-buffered,
 *   `--bias=disable`, `--format` `%e` is 1 rising / 0 falling;
 * - v2 (Debian 13, Raspberry Pi OS Trixie): `gpiomon [opts] -c <chip> <offset>`,
 *   `-b` = bias (`disabled`), `--debounce-period`, `%e` is 1 rising / 2 falling,
 *   and the default output is "<secs>\trising\t<line>" instead of v1's
 *   "event:  RISING EDGE offset: 17 timestamp: [...]".
 * So `gpiomon --version` picks the arguments, the format asked for is
 * "%o %e" on both, and both default formats are understood as well. With
 * `--active-low` a press is a rising edge on both. Edges closer than
 * `debounce` are contact bounce. gpiomon exiting (the chip gone, the line
 * taken) is counted and it is started again with a doubling backoff.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Clock } from '../../runtime/clock.js';
import type { ButtonEvent } from '../device.js';
import type { LinuxButtonConfig } from './config.js';
import { Retry, stopChild } from './retry.js';
import { SensorFault } from './sysfs.js';

export interface GpioButtonOptions {
  config: LinuxButtonConfig;
  clock: Clock;
  onEvent(event: ButtonEvent): void;
  onFault(fault: SensorFault): void;
}

export type Edge = 'rising' | 'falling';

export class GpioButton {
  private child: ChildProcess | undefined;
  private closed = true;
  private readonly retry: Retry;
  private lastEdgeAt = -Infinity;
  private pressed = false;

  constructor(private readonly options: GpioButtonOptions) {
    this.retry = new Retry(options.clock);
  }

  open(): Promise<void> {
    this.closed = false;
    void this.start();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry.stop();
    const child = this.child;
    this.child = undefined;
    await stopChild(child);
  }

  private async start(): Promise<void> {
    const { config } = this.options;
    const version = await gpiomonVersion(config.command);
    if (this.closed) return;
    if (version === undefined) {
      this.restart(`${config.command} --version failed (apt install gpiod)`);
      return;
    }
    // libgpiod 2's gpiomon neither flushes after an event nor has a line-buffered option: into a pipe its events
    // would wait in a 4 KiB stdio buffer, so it runs under coreutils' `stdbuf -oL` (v1 has --line-buffered).
    const args = gpiomonArgs(config, version);
    const child = version === 2
      ? spawn('stdbuf', ['-oL', config.command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(config.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).trim().slice(-200); });
    child.once('error', (err) => { stderr = err.message; });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const edge = parseGpiomonLine(line);
      if (edge === undefined) return;
      this.retry.reset();
      this.edge(edge);
    });
    child.once('close', (code, signal) => {
      if (this.child !== child || this.closed) return;
      this.child = undefined;
      this.restart(`gpiomon on ${config.chip} line ${config.line} stopped (${signal ?? `exit ${code}`}${stderr ? `: ${stderr}` : ''})`);
    });
  }

  private restart(reason: string): void {
    this.options.onFault(new SensorFault('missing', `${reason}; retrying in ${this.retry.nextSeconds} s`));
    this.retry.schedule(() => { if (!this.closed) void this.start(); });
  }

  private edge(edge: Edge): void {
    const now = this.options.clock.now();
    const press = edge === 'rising';
    // Bounce: an edge too soon after the last one, or one that does not change the state.
    if (now - this.lastEdgeAt < this.options.config.debounce || press === this.pressed) return;
    this.lastEdgeAt = now;
    this.pressed = press;
    this.options.onEvent({ name: this.options.config.name, action: press ? 'press' : 'release', t: now });
  }
}

/** The major version of libgpiod's tools, from `gpiomon --version`; undefined when it cannot run. */
function gpiomonVersion(command: string): Promise<1 | 2 | undefined> {
  return new Promise((resolve) => {
    execFile(command, ['--version'], { timeout: 5_000 }, (err, stdout) => {
      if (err) { resolve(undefined); return; }
      const match = /v(\d+)\./.exec(stdout);
      resolve(match?.[1] === '1' ? 1 : 2);
    });
  });
}

export function gpiomonArgs(config: LinuxButtonConfig, version: 1 | 2): string[] {
  const activeLow = config.activeLow ? ['--active-low'] : [];
  if (version === 1) {
    const bias = config.bias === 'as-is' ? [] : [`--bias=${config.bias === 'disabled' ? 'disable' : config.bias}`];
    return ['--line-buffered', '--format=%o %e', ...activeLow, ...bias, config.chip, String(config.line)];
  }
  const bias = config.bias === 'as-is' ? [] : ['--bias', config.bias];
  const debounce = config.debounce > 0 ? ['--debounce-period', `${config.debounce}ms`] : [];
  return ['--format=%o %e', ...activeLow, ...bias, ...debounce, '--chip', config.chip, String(config.line)];
}

/** One line of gpiomon output, in the asked-for format or either default; undefined for anything else. */
export function parseGpiomonLine(line: string): Edge | undefined {
  const text = line.trim();
  const custom = /^\d+ ([012])$/.exec(text);
  if (custom) return custom[1] === '1' ? 'rising' : 'falling';
  const v1 = /^event:\s+(RISING|FALLING) EDGE offset:/.exec(text);
  if (v1) return v1[1] === 'RISING' ? 'rising' : 'falling';
  const v2 = /^\S+\s+(rising|falling)\s/.exec(text);
  if (v2) return v2[1] === 'rising' ? 'rising' : 'falling';
  return undefined;
}
