/**
 * The node's background work and timers, by owner (the kernel or an
 * extension): what stop() waits for and clears. Errors of tracked work are
 * counted (`node.pipeline_errors`) and logged, never thrown.
 */
import type { Counters } from '../counters.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

export class NodeWork {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly timers = new Map<string, (() => void)[]>();

  constructor(private readonly counters: Counters, private readonly logger: Logger) {}

  /** Keeps hold of `work` until it settles, so settle() can wait for it. */
  track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.counters.increment('node.pipeline_errors');
      this.logger.error({ err: describeError(err) }, 'pipeline step failed');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Waits until no tracked work is left (work may start more work). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Holds a timer's `clear` for `owner`. */
  hold(owner: string, clear: () => void): void {
    this.timers.set(owner, [...(this.timers.get(owner) ?? []), clear]);
  }

  /** Clears `owner`'s timers, or every timer. */
  clear(owner?: string): void {
    for (const name of owner === undefined ? [...this.timers.keys()] : [owner]) {
      for (const clear of this.timers.get(name) ?? []) clear();
      this.timers.delete(name);
    }
  }
}
