/**
 * Simulated time for the mesh simulation: a queue of events in time order
 * (a binary heap; ties in the order scheduled), run one at a time. Between
 * events the promise jobs the last one started are run to the end, so the
 * async gossip code (in-memory stores resolve at once) finishes each step
 * before time moves on.
 */
import type { TreeScheduler } from '../../runtime/mesh/broadcast-tree.js';

interface Event { at: number; order: number; fn: () => void; live: boolean }

export class SimClock implements TreeScheduler {
  private t = 0;
  private order = 0;
  private readonly heap: Event[] = [];
  /** Events run so far. */
  events = 0;

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): () => void {
    const event: Event = { at: this.t + Math.max(0, ms), order: this.order++, fn, live: true };
    this.push(event);
    return () => { event.live = false; };
  }

  /** Every `ms` from now until cancelled. */
  every(ms: number, fn: () => void): () => void {
    let cancel = () => undefined as void;
    const tick = () => {
      fn();
      cancel = this.after(ms, tick);
    };
    cancel = this.after(ms, tick);
    return () => cancel();
  }

  /** Runs events until `until` (simulated ms) or until none is left; returns the time reached. */
  async run(until: number, stop: () => boolean = () => false): Promise<number> {
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > until || stop()) break;
      this.pop();
      if (!next.live) continue;
      this.t = next.at;
      this.events++;
      next.fn();
      await settle();
    }
    if (!stop()) this.t = Math.max(this.t, until);
    return this.t;
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Event, h[p] as Event)) break;
      [h[i], h[p]] = [h[p] as Event, h[i] as Event];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Event, h[m] as Event)) m = l;
      if (r < h.length && before(h[r] as Event, h[m] as Event)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Event, h[i] as Event];
      i = m;
    }
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

/** Lets every pending promise job run (in-memory work resolves within a few turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
