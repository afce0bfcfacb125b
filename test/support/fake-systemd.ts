/**
 * A stand-in for systemd running packaging/apiary.service, for machines whose
 * PID 1 is not systemd: it starts the command with NOTIFY_SOCKET and
 * WATCHDOG_USEC set and a fake `systemd-notify` first on PATH (the node's
 * only way to talk to systemd, runtime/extensions/systemd/notifier.ts), and
 * does what the unit asks of systemd (systemd.service(5)):
 * - Type=notify: start-up ends at READY=1; no READY within the start timeout fails the run;
 * - WatchdogSec: armed at READY, re-armed by each WATCHDOG=1; when it runs out, SIGABRT (WatchdogSignal=), then SIGKILL;
 * - Restart=on-failure (RestartSec): a non-zero exit, a signal, a watchdog or start timeout start it again,
 *   except RestartPreventExitStatus=78.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ServiceRun {
  readonly n: number;
  readonly child: ChildProcess;
  output: string;
  ready: boolean;
  pings: number;
  readonly startedAt: number;
  /** When the watchdog was last armed (READY, then each ping). */
  armedAt: number;
  killedBy?: 'watchdog' | 'start-timeout';
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface FakeSystemdOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Where the fake systemd-notify and its logs go. */
  readonly dir: string;
  readonly watchdogMs: number;
  readonly startTimeoutMs: number;
  readonly restartMs: number;
}

export class FakeSystemd {
  readonly runs: ServiceRun[] = [];
  private stopping = false;
  private poll: NodeJS.Timeout | undefined;
  private restart: NodeJS.Timeout | undefined;

  constructor(private readonly o: FakeSystemdOptions) {}

  async start(): Promise<void> {
    await mkdir(path.join(this.o.dir, 'bin'), { recursive: true });
    const notify = path.join(this.o.dir, 'bin', 'systemd-notify');
    await writeFile(notify, '#!/bin/sh\necho "$*" >> "$FAKE_NOTIFY_LOG"\n');
    await chmod(notify, 0o755);
    this.spawnRun();
    this.poll = setInterval(() => this.check(), 100);
  }

  get current(): ServiceRun | undefined {
    return this.runs.at(-1);
  }

  private logOf(n: number): string {
    return path.join(this.o.dir, `notify-${n}.log`);
  }

  private spawnRun(): void {
    const n = this.runs.length + 1;
    const child = spawn(this.o.command, [...this.o.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, ...this.o.env,
        NOTIFY_SOCKET: '/run/fake-systemd/notify', WATCHDOG_USEC: String(this.o.watchdogMs * 1000), FAKE_NOTIFY_LOG: this.logOf(n),
        PATH: `${path.join(this.o.dir, 'bin')}:${process.env.PATH ?? ''}`,
      },
    });
    const run: ServiceRun = { n, child, output: '', ready: false, pings: 0, startedAt: Date.now(), armedAt: 0 };
    child.stdout?.on('data', (chunk: Buffer) => { run.output += chunk.toString(); });
    child.stderr?.on('data', (chunk: Buffer) => { run.output += chunk.toString(); });
    child.once('close', (code, signal) => {
      run.exit = { code, signal };
      const failed = code !== 0 || signal !== null;
      if (!this.stopping && failed && code !== 78) this.restart = setTimeout(() => this.spawnRun(), this.o.restartMs);
    });
    this.runs.push(run);
  }

  private check(): void {
    const run = this.current;
    if (!run || run.exit || run.killedBy) return;
    const log = this.logOf(run.n);
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [];
    const pings = lines.filter((l) => l.includes('WATCHDOG=1')).length;
    const now = Date.now();
    if (!run.ready && lines.some((l) => l.includes('--ready') || l.includes('READY=1'))) {
      run.ready = true;
      run.armedAt = now;
    }
    if (pings > run.pings) {
      run.pings = pings;
      if (run.ready) run.armedAt = now;
    }
    const kill = (why: 'watchdog' | 'start-timeout') => {
      run.killedBy = why;
      run.child.kill('SIGABRT');
      setTimeout(() => { if (!run.exit) run.child.kill('SIGKILL'); }, 3_000).unref();
    };
    if (!run.ready && now - run.startedAt > this.o.startTimeoutMs) kill('start-timeout');
    else if (run.ready && now - run.armedAt > this.o.watchdogMs) kill('watchdog');
  }

  /** Resolves when `predicate` holds (checked every 100 ms); rejects after `timeoutMs` with `what` and the runs' output. */
  async waitUntil(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(`${what}: not within ${timeoutMs} ms. Runs:\n${this.runs.map((r) => `--- run ${r.n} (${JSON.stringify(r.exit ?? 'running')}${r.killedBy ? `, killed: ${r.killedBy}` : ''})\n${r.output.slice(-3000)}`).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Like `systemctl stop`: SIGTERM, then SIGKILL after 20 s; no restart. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restart !== undefined) clearTimeout(this.restart);
    if (this.poll !== undefined) clearInterval(this.poll);
    const run = this.current;
    if (!run || run.exit) return;
    const closed = new Promise<void>((resolve) => run.child.once('close', () => resolve()));
    run.child.kill('SIGTERM');
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
    await closed;
    clearTimeout(timer);
  }
}
