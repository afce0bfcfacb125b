/**
 * Counters that survive restarts: saved in the node's state document (atomic
 * writes, like the rest of it) at every boot, every COUNTERS_SAVE_MS and at
 * stop, and added back at the next start, with the time counting began
 * (`since`), so `apiary status` shows totals over the data dir's life, not
 * only since the last restart. A kill -9 loses at most the last interval.
 */
import type { Counters } from '../counters.js';
import type { DeepReadonly } from '../deep-freeze.js';
import type { NodeState, NodeStorage } from './node-storage.js';

export const COUNTERS_SAVE_MS = 60_000;

export interface SavedCounters {
  /** Wall-clock ms when this data dir started counting. */
  since: number;
  values: Record<string, number>;
}

/** Adds the counts saved by the last run to `counters`; returns when counting began. */
export function restoreCounters(counters: Counters, previous: DeepReadonly<NodeState>): number {
  for (const [name, value] of Object.entries(previous.counters?.values ?? {})) {
    if (Number.isSafeInteger(value) && value > 0) counters.increment(name, value);
  }
  return previous.counters?.since ?? Date.now();
}

export function savedCounters(counters: Counters, since: number): SavedCounters {
  return { since, values: counters.snapshot() };
}

/** Saves the counters every COUNTERS_SAVE_MS (real time); returns the stop. */
export function saveCountersPeriodically(storage: NodeStorage, counters: Counters, since: number): () => void {
  const timer = setInterval(() => {
    storage.state.update((s) => { s.counters = savedCounters(counters, since); }).catch(() => counters.increment('storage.counters_save_errors'));
  }, COUNTERS_SAVE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
