/** Child processes, the MQTT watcher and cleanup for the benchmark. */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect, type MqttClient } from 'mqtt';

export const NODE_MAIN = fileURLToPath(new URL('../../apiary.mjs', import.meta.url));
const STOP_TIMEOUT_MS = 15_000;
const FIRST_READINGS_KEPT = 100;

/** Resolves after `ms`, or rejects with `what` if `promise` has not settled by then. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * A port that was free a moment ago. Picked before the spawn so the watcher
 * can already be knocking when the broker opens (another process could take
 * it in between; unlikely on a bench machine, and the node would then fail loudly).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** ms from spawn to the exit event. */
  readonly atMs: number;
}

/** A Node.js child process, timed from just before spawn(). */
export class Child {
  readonly pid: number;
  readonly spawnedAt: number;
  readonly exited: Promise<Exit>;
  /** ms from spawn to the stdout chunk holding "MQTT broker:" (the node prints it once started). */
  readonly brokerLine: Promise<number>;
  private readonly process: ChildProcess;
  private tail = '';
  private readonly waiters = new Set<() => void>();
  private readonly stopTimeoutMs: number;

  /** `command`: what to run instead of this Node.js (the arm64 smoke test runs qemu-aarch64, which stops slower). */
  constructor(args: readonly string[], options: { output: boolean; command?: string; stopTimeoutMs?: number; env?: Readonly<Record<string, string>> }) {
    this.stopTimeoutMs = options.stopTimeoutMs ?? STOP_TIMEOUT_MS;
    this.spawnedAt = performance.now();
    this.process = spawn(options.command ?? process.execPath, args, { stdio: ['ignore', options.output ? 'pipe' : 'ignore', options.output ? 'pipe' : 'ignore'], env: { ...process.env, ...options.env } });
    if (this.process.pid === undefined) throw new Error(`could not spawn ${options.command ?? 'node'} ${args.join(' ')}`);
    this.pid = this.process.pid;
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => resolve({ code, signal, atMs: performance.now() - this.spawnedAt }));
    });
    // Output is always drained: a full pipe would block the node's logging and skew timings.
    const onData = (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-8000);
      for (const check of this.waiters) check();
    };
    this.process.stdout?.on('data', onData);
    this.process.stderr?.on('data', onData);
    this.brokerLine = this.when(/MQTT broker:/).then((seen) => seen.atMs);
  }

  /** ms from spawn to the first output chunk after which the output so far matches `pattern`, and the match. */
  when(pattern: RegExp): Promise<{ atMs: number; match: RegExpExecArray }> {
    return new Promise((resolve) => {
      const check = () => {
        const match = pattern.exec(this.tail);
        if (!match) return;
        this.waiters.delete(check);
        resolve({ atMs: performance.now() - this.spawnedAt, match });
      };
      this.waiters.add(check);
      check();
    });
  }

  /** `node [nodeFlags] <main> start ...args`; `main`: ours, or a baseline checkout's dist/apiary.mjs; `nodeFlags`: its service's (service-flags.ts); `env`: added to ours. */
  static apiary(args: readonly string[], main = NODE_MAIN, nodeFlags: readonly string[] = [], env?: Readonly<Record<string, string>>): Child {
    return new Child([...nodeFlags, main, 'start', ...args], { output: true, ...(env ? { env } : {}) });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The last output lines, for an error message when the node dies. */
  get output(): string {
    return this.tail;
  }

  /** Rejects when the process exits: raced against waits that need it alive. */
  get died(): Promise<never> {
    return this.exited.then((exit) => {
      throw new Error(`node exited early (code ${String(exit.code)}, signal ${String(exit.signal)}); last output:\n${this.output}`);
    });
  }

  /** SIGTERM (the node's clean shutdown), SIGKILL if it hangs. */
  async stop(): Promise<Exit & { forced: boolean }> {
    if (!this.running) return { ...(await this.exited), forced: false };
    this.process.kill('SIGTERM');
    try {
      return { ...(await withTimeout(this.exited, this.stopTimeoutMs, `pid ${this.pid} to exit`)), forced: false };
    } catch {
      this.process.kill('SIGKILL');
      return { ...(await this.exited), forced: true };
    }
  }
}

export interface MessageCounts {
  readings: number;
  models: number;
  decisions: number;
  other: number;
}

export interface FirstReading {
  /** ms on the performance.now() clock. */
  readonly at: number;
  /** Node time of the reading, to match it against the stored records. */
  readonly t: number;
  readonly topic: string;
}

/** Counts the node's live (not retained) messages by kind and notes the first reading. */
export class BusWatcher {
  readonly counts: MessageCounts = { readings: 0, models: 0, decisions: 0, other: 0 };
  readonly firstReading: Promise<FirstReading>;
  /** "channel@t" of the first readings received, to check none was published before we subscribed. */
  readonly firstReadings = new Set<string>();
  /** The first live model output: when (performance.now()), its topic and payload. */
  readonly firstModel: Promise<{ at: number; topic: string; payload: string }>;
  private readonly client: MqttClient;
  private closed: Promise<void> | undefined;

  constructor(port: number) {
    // Retries every 10 ms until the node's broker accepts, so the wait adds at most ~10 ms.
    this.client = connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 10, connectTimeout: 5000, clean: true, clientId: `bench-${process.pid}-${port}` });
    this.client.on('connect', () => this.client.subscribe('apiary/#', { qos: 0 }, () => undefined));
    this.client.on('error', () => undefined); // ECONNREFUSED until the broker is up; mqtt.js reconnects
    this.firstReading = new Promise((resolve) => {
      this.client.on('message', (topic, payload, packet) => {
        if (packet.retain) return; // replayed state from before we subscribed
        const kind = topic.split('/')[2];
        if (kind === 'readings') {
          const at = performance.now();
          this.counts.readings += 1;
          if (this.counts.readings > FIRST_READINGS_KEPT) return;
          const { channel, t } = JSON.parse(payload.toString('utf8')) as { channel: string; t: number };
          this.firstReadings.add(`${channel}@${t}`);
          if (this.counts.readings === 1) resolve({ at, t, topic });
        } else if (kind === 'models' || kind === 'decisions') this.counts[kind] += 1;
        else this.counts.other += 1;
      });
    });
    this.firstModel = new Promise((resolve) => {
      this.client.on('message', (topic, payload, packet) => {
        if (!packet.retain && topic.split('/')[2] === 'models') resolve({ at: performance.now(), topic, payload: payload.toString('utf8') });
      });
    });
  }

  snapshot(): MessageCounts {
    return { ...this.counts };
  }

  close(): Promise<void> {
    this.closed ??= this.client.endAsync(true);
    return this.closed;
  }
}

/** Everything the run opened, closed in reverse order even when the run fails. */
export class Resources {
  private readonly closers: (() => Promise<unknown>)[] = [];

  child(child: Child): Child {
    this.closers.push(() => child.stop());
    return child;
  }

  watcher(watcher: BusWatcher): BusWatcher {
    this.closers.push(() => watcher.close());
    return watcher;
  }

  add(close: () => Promise<unknown> | void): void {
    this.closers.push(async () => close());
  }

  dir(dir: string): string {
    this.closers.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async closeAll(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) await close().catch((err: unknown) => process.stderr.write(`bench: cleanup: ${String(err)}\n`));
  }
}
