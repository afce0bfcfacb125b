/**
 * Reopening what went away (a program that exited, a port that closed): a
 * doubling wait from 1 s up to 1 min, so an unplugged part costs little,
 * started over once data flows again. Timers go through the node's Clock,
 * so close() can stop them.
 */
import type { ChildProcess } from 'node:child_process';
import type { Clock } from '../../runtime/clock.js';

const MIN_MS = 1_000;
const MAX_MS = 60_000;

export class Retry {
  private waitMs = MIN_MS;
  private cancel: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  /** The wait the next schedule() will use, in whole seconds (for messages). */
  get nextSeconds(): number {
    return Math.round(this.waitMs / 1000);
  }

  /** Calls `again` after the current wait, and doubles the wait for next time. */
  schedule(again: () => void): void {
    this.cancel = this.clock.after(this.waitMs, again);
    this.waitMs = Math.min(MAX_MS, this.waitMs * 2);
  }

  /** Data flows: the next failure starts from the shortest wait. */
  reset(): void {
    this.waitMs = MIN_MS;
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }
}

/** Ends a child process and waits until it has gone (its pipes closed). */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGTERM');
  await exited;
}
