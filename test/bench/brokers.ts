/**
 * The two brokers under comparison as child processes on loopback: the
 * embedded broker (broker-server.js) and Debian's mosquitto, each measured
 * from outside through /proc the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BrokerServerStats } from './broker-server.js';
import { cpuMs, memory, type Memory } from './proc.js';
import { freePort, sleep, withTimeout } from './processes.js';

const BROKER_SERVER = fileURLToPath(new URL('./broker-server.js', import.meta.url));
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const MOSQUITTO_PATHS = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/local/bin/mosquitto'];

/**
 * CPU time of all the process's threads in ns, from /proc/<pid>/task/<tid>/schedstat
 * (ns resolution; threads that already exited are not counted). Falls back to
 * /proc/<pid>/stat utime+stime (10 ms ticks) where schedstat is missing.
 */
export async function cpuNs(pid: number): Promise<number> {
  try {
    let total = 0;
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '');
      total += Number(text.split(' ')[0] ?? 0) || 0;
    }
    if (total > 0) return total;
  } catch {
    // no schedstat: below
  }
  return (await cpuMs(pid)) * 1e6;
}

/** A broker child process: where it listens and how to read and stop it. */
export abstract class BrokerProcess {
  abstract readonly name: string;
  readonly port: number;
  protected readonly proc: ChildProcess;
  private tail = '';
  private readonly exited: Promise<void>;

  protected constructor(proc: ChildProcess, port: number) {
    this.proc = proc;
    this.port = port;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.stderr?.on('data', (chunk: Buffer) => { this.tail = (this.tail + chunk.toString('utf8')).slice(-4000); });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get output(): string {
    return this.tail;
  }

  cpuNs(): Promise<number> {
    return cpuNs(this.pid);
  }

  memory(): Promise<Memory> {
    return memory(this.pid);
  }

  /** SIGTERM, SIGKILL if it has not exited within a few seconds. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    try {
      await withTimeout(this.exited, STOP_TIMEOUT_MS, `${this.name} (pid ${this.pid}) to exit`);
    } catch {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** EmbeddedBroker (aedes) alone in a Node.js process. */
export class EmbeddedProcess extends BrokerProcess {
  readonly name: string;
  private readonly replies: ((line: string) => void)[] = [];

  private constructor(proc: ChildProcess, port: number, lines: AsyncIterator<string>, name: string) {
    super(proc, port);
    this.name = name;
    void (async () => {
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        this.replies.shift()?.(next.value);
      }
    })();
  }

  /**
   * `server`: the broker-server.js to run, ours by default, or a baseline
   * checkout's (baseline.ts); `name` tells them apart in client ids and rows.
   */
  static async start(server = BROKER_SERVER, name = 'embedded'): Promise<EmbeddedProcess> {
    // --expose-gc only defines global.gc, for "stats gc" (retained heap); nothing calls it otherwise.
    const proc = spawn(process.execPath, ['--expose-gc', server], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-4000); });
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    try {
      const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`broker-server exited (code ${String(code)}): ${stderr}`))));
      const first = await withTimeout(Promise.race([lines.next(), exited]), START_TIMEOUT_MS, 'the embedded broker to listen');
      const { port } = JSON.parse(first.done ? '{}' : first.value) as { port?: number };
      if (typeof port !== 'number') throw new Error(`${server} printed no port: ${stderr}`);
      return new EmbeddedProcess(proc, port, lines, name);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
  }

  /** The broker's counters and a few diagnostics, asked over stdin. */
  stats(options: { gc?: boolean } = {}): Promise<BrokerServerStats> {
    const reply = new Promise<string>((resolve) => this.replies.push(resolve));
    this.proc.stdin?.write(options.gc ? 'stats gc\n' : 'stats\n');
    return withTimeout(reply, START_TIMEOUT_MS, 'broker-server stats').then((line) => JSON.parse(line) as BrokerServerStats);
  }
}

/** The path of an executable mosquitto (APIARY_BENCH_MOSQUITTO, else the usual places), or undefined. */
export async function findMosquitto(): Promise<string | undefined> {
  const chosen = process.env.APIARY_BENCH_MOSQUITTO;
  for (const candidate of chosen ? [chosen] : MOSQUITTO_PATHS) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

async function waitListening(port: number, deadline: number, alive: () => boolean): Promise<void> {
  while (performance.now() < deadline && alive()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`broker on port ${port} did not start listening`);
}

/** mosquitto with a minimal generated config (loopback listener, anonymous, no persistence). */
export class MosquittoProcess extends BrokerProcess {
  readonly name = 'mosquitto';

  static async start(binary: string, dir: string, extraConfig: readonly string[] = []): Promise<MosquittoProcess> {
    const port = await freePort();
    const config = path.join(dir, `mosquitto-${port}.conf`);
    await writeFile(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ...extraConfig, ''].join('\n'));
    const proc = spawn(binary, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    const broker = new MosquittoProcess(proc, port);
    try {
      await waitListening(port, performance.now() + START_TIMEOUT_MS, () => broker.running);
    } catch (err) {
      await broker.stop();
      throw new Error(`mosquitto did not start: ${(err as Error).message}; its output:\n${broker.output}`);
    }
    return broker;
  }

  /** `mosquitto -h` prints its version on the first line. */
  static version(binary: string): Promise<string> {
    return new Promise((resolve) => {
      const proc = spawn(binary, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
      proc.stderr.on('data', (c: Buffer) => { out += c.toString('utf8'); });
      proc.once('error', () => resolve('mosquitto'));
      proc.once('exit', () => resolve(/mosquitto version [^\s]+/.exec(out)?.[0] ?? 'mosquitto'));
    });
  }
}

/** RSS of a Node.js process that only waits: what any Node.js broker pays before it does anything. */
export async function idleNodeRss(): Promise<Memory> {
  const proc = spawn(process.execPath, ['-e', 'setTimeout(() => undefined, 60_000)'], { stdio: 'ignore' });
  try {
    await sleep(500);
    return await memory(proc.pid ?? -1);
  } finally {
    proc.kill('SIGKILL');
  }
}
