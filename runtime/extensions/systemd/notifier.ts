/**
 * Talks to systemd through the `systemd-notify` binary (from the `systemd`
 * package) rather than a native sd_notify addon: nothing to compile on the
 * board. It runs as a child of the node, so the unit needs NotifyAccess=all;
 * since systemd 246 `systemd-notify` waits until the manager has read its
 * message before it exits, so the message is attributed to the unit.
 */
import { execFile } from 'node:child_process';

export interface NotifierOptions {
  /** The binary, found on PATH by default. */
  readonly command?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** A notification that has not returned by then is killed and counted as failed. */
  readonly timeoutMs?: number;
}

export class SystemdNotifier {
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: NotifierOptions = {}) {
    this.command = options.command ?? 'systemd-notify';
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** Runs `systemd-notify <args>` (no shell); rejects with its stderr when it fails. */
  send(args: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.command, [...args], { env: this.options.env ?? process.env, timeout: this.timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`${this.command} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
        else resolve();
      });
    });
  }
}

/**
 * The watchdog interval systemd asks for, in ms, or undefined when there is
 * none for this process (sd_watchdog_enabled(3): WATCHDOG_USEC, and
 * WATCHDOG_PID when set must be this process).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return undefined;
  // sd_watchdog_enabled(3): ping at half the timeout. At least 10 ms, so a tiny value cannot spin the loop.
  return Math.max(10, Math.floor(usec / 2_000));
}
