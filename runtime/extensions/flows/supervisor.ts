/**
 * Runs Node-RED as a child process and keeps it running: never inside the
 * node's process, so a flow that throws, leaks or hangs takes down Node-RED
 * alone (as Node-RED's own Pi installer and FlowFuse's device agent run it).
 * A crash is restarted after an exponential backoff; `loopCrashes` crashes
 * within `window` is a restart loop, and Node-RED is left `crashed` until
 * started again. Timers are real time, not the node clock (which a
 * simulation speeds up): Node-RED lives in real time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Counters } from '../../counters.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';

export type FlowsState = 'stopped' | 'starting' | 'running' | 'crashed';

export interface SupervisorOptions {
  /** node-red's red.js. */
  readonly redJs: string;
  readonly heapMb: number;
  /** Called before every spawn (settings are written again, so a new password is picked up). */
  prepare(): Promise<{ userDir: string; settingsFile: string }>;
  /** Added to Node-RED's environment (flows read them as ${NAME}). */
  readonly env: Readonly<Record<string, string>>;
  readonly url: string;
  readonly restart: { readonly delay: number; readonly maxDelay: number; readonly loopCrashes: number; readonly window: number };
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly logger: Logger;
  readonly counters: Counters;
}

export interface FlowsStatus {
  state: FlowsState;
  pid: number | null;
  restarts: number;
  crashes: number;
  url: string;
  lastExit?: { code: number | null; signal: string | null };
  lastError?: string;
}

interface Running { readonly child: ChildProcess; readonly closed: Promise<void> }

/** Node-RED's console lines kept for the log when it crashes. */
const TAIL_LINES = 30;

export class NodeRedSupervisor {
  private state: FlowsState = 'stopped';
  private current: Running | undefined;
  /** Bumped by every start and stop: a spawn or exit from an older round is ignored. */
  private round = 0;
  private wanted = false;
  private preparing: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private crashTimes: number[] = [];
  private restarts = 0;
  private crashes = 0;
  private lastExit: { code: number | null; signal: string | null } | undefined;
  private lastError: string | undefined;
  private tail: string[] = [];

  constructor(private readonly options: SupervisorOptions) {}

  /** Starts Node-RED unless it runs or is starting; a `crashed` one gets a fresh crash history. */
  start(): void {
    if (this.wanted && this.state !== 'crashed') return;
    this.wanted = true;
    this.crashTimes = [];
    this.lastError = undefined;
    this.launch();
  }

  /** SIGTERM, then SIGKILL after stopTimeoutMs; also while it is starting or waiting to restart. Resolves once it has exited. */
  async stop(): Promise<void> {
    this.wanted = false;
    this.round += 1;
    this.clearTimers();
    await this.preparing;
    const running = this.current;
    if (running) {
      running.child.kill('SIGTERM');
      const kill = setTimeout(() => {
        this.options.logger.warn({ pid: running.child.pid, timeoutMs: this.options.stopTimeoutMs }, 'Node-RED did not stop after SIGTERM: killing it');
        running.child.kill('SIGKILL');
      }, this.options.stopTimeoutMs);
      await running.closed;
      clearTimeout(kill);
    }
    this.state = 'stopped';
  }

  status(): FlowsStatus {
    return {
      state: this.state,
      pid: this.current?.child.pid ?? null,
      restarts: this.restarts,
      crashes: this.crashes,
      url: this.options.url,
      ...(this.lastExit ? { lastExit: this.lastExit } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private clearTimers(): void {
    clearTimeout(this.restartTimer);
    clearTimeout(this.startTimer);
    this.restartTimer = undefined;
    this.startTimer = undefined;
  }

  private launch(): void {
    const round = ++this.round;
    this.state = 'starting';
    const work = this.options.prepare().then(
      (files) => {
        if (round === this.round && this.wanted) this.spawnNodeRed(files);
      },
      (err: unknown) => {
        if (round !== this.round) return;
        // A config problem (no password for a LAN editor): restarting would not help.
        this.state = 'crashed';
        this.lastError = describeError(err);
        this.options.logger.error({ err: this.lastError }, 'could not prepare Node-RED; it stays stopped');
      },
    );
    const tracked: Promise<void> = work.finally(() => { if (this.preparing === tracked) this.preparing = undefined; });
    this.preparing = tracked;
  }

  private spawnNodeRed(files: { userDir: string; settingsFile: string }): void {
    const { redJs, heapMb, env, logger } = this.options;
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, APIARY_PARENT_PID: String(process.pid) };
    delete childEnv.NODE_OPTIONS; // the node's own flags (a test runner's loader) are not Node-RED's
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, redJs, '--userDir', files.userDir, '--settings', files.settingsFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv,
    });
    this.tail = [];
    const closed = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        this.lastError = describeError(err);
        logger.error({ err: this.lastError }, 'could not start Node-RED');
        // A spawn that failed emits no close: settle it here (a running child's close follows its exit).
        if (child.pid === undefined) { this.onExit(child, null, null); resolve(); }
      });
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => { this.onExit(child, code, signal); resolve(); });
    });
    this.current = { child, closed };
    logger.info({ pid: child.pid, heapMb }, 'Node-RED starting');
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(child, line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.startTimer = setTimeout(() => {
      this.startTimer = undefined;
      this.lastError = `Node-RED did not open its editor within ${this.options.startTimeoutMs} ms`;
      logger.warn({ pid: child.pid }, `${this.lastError}: killing it`);
      child.kill('SIGKILL');
    }, this.options.startTimeoutMs);
  }

  private onLine(child: ChildProcess, line: string): void {
    if (line.trim() === '') return;
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.options.logger.debug({ nodeRed: line });
    if (this.current?.child === child && this.state === 'starting' && line.includes('Server now running at')) {
      clearTimeout(this.startTimer);
      this.startTimer = undefined;
      this.state = 'running';
      this.options.logger.info({ pid: child.pid, url: this.options.url }, 'Node-RED is running');
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.current?.child !== child) return;
    this.current = undefined;
    clearTimeout(this.startTimer);
    this.startTimer = undefined;
    this.lastExit = { code, signal };
    if (!this.wanted) return; // stop() asked for it
    const { logger, counters, restart } = this.options;
    this.crashes += 1;
    counters.increment('flows.crashes');
    const now = Date.now();
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < restart.window), now];
    logger.warn({ code, signal, crashesInWindow: this.crashTimes.length, output: this.tail.slice(-10) }, 'Node-RED exited');
    if (this.crashTimes.length >= restart.loopCrashes) {
      this.state = 'crashed';
      this.lastError = `${this.crashTimes.length} crashes within ${restart.window} ms: restart loop; start it again with \`apiary flows start\``;
      counters.increment('flows.restart_loops');
      logger.error({ crashes: this.crashTimes.length, windowMs: restart.window }, 'Node-RED is in a restart loop: no more restarts until `apiary flows start`');
      return;
    }
    const delay = Math.min(restart.maxDelay, restart.delay * 2 ** (this.crashTimes.length - 1));
    this.state = 'starting';
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.wanted) return;
      this.restarts += 1;
      counters.increment('flows.restarts');
      this.launch();
    }, delay);
  }
}
