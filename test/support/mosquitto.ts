/**
 * A real Mosquitto broker for tests: Debian's `mosquitto` as a child process
 * on a free loopback port, with a generated config in a temp dir. It can be
 * stopped and started again on the same port, like an external broker that
 * goes away for a while.
 *
 * The binary is required, not optional: CI installs it (`apt-get install
 * mosquitto`); a machine without it fails the test with that advice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** The mosquitto binary: $MOSQUITTO_BIN if set, else Debian's /usr/sbin/mosquitto, else one on PATH. */
export function findMosquitto(): string {
  const chosen = process.env.MOSQUITTO_BIN;
  const candidates = chosen ? [chosen] : [
    '/usr/sbin/mosquitto',
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'mosquitto')),
  ].filter((c): c is string => Boolean(c));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(
    `mosquitto is not installed (looked for ${candidates.join(', ')}): `
    + 'the uplink tests need a real external broker; install it with `sudo apt-get install mosquitto` '
    + '(CI does this in .ci/run).',
  );
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class Mosquitto {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(readonly bin: string, readonly dir: string, public port: number) {}

  /** Starts a broker on a free loopback port; resolves once it accepts connections. */
  static async start(): Promise<Mosquitto> {
    const bin = findMosquitto();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mosquitto-'));
    let lastError: unknown;
    // The free port can be taken by someone else before mosquitto binds it: try a few.
    for (let attempt = 0; attempt < 3; attempt++) {
      const broker = new Mosquitto(bin, dir, await freePort());
      try {
        await broker.start();
        return broker;
      } catch (err) {
        lastError = err;
        await broker.stop();
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw lastError;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts (again) on the same port. */
  async start(): Promise<void> {
    if (this.child) return;
    const config = path.join(this.dir, 'mosquitto.conf');
    await writeFile(config, [
      `listener ${this.port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      '',
    ].join('\n'));
    this.output = '';
    const child = spawn(this.bin, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer): void => { this.output = (this.output + chunk.toString('utf8')).slice(-4_000); };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code ?? '?'})`;
      if (this.child === child) this.child = undefined;
    });
    child.once('error', (err) => { exited = `could not run: ${err.message}`; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      if (exited !== undefined || Date.now() > deadline) {
        const why = exited ?? `not accepting connections after ${START_TIMEOUT_MS} ms`;
        if (exited === undefined) await this.stop();
        this.child = undefined;
        throw new Error(`mosquitto on port ${this.port} ${why}:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops the broker (SIGTERM, SIGKILL if it lingers); its port stays reserved for start(). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.child = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the broker and removes its temp dir. */
  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
