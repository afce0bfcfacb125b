/**
 * Time for the node. On real hardware simulated time is wall time; with a
 * simulated board `speed` runs it faster, so a day of hive life can be shown
 * in minutes. Every timer in the node goes through here, so every timer can
 * be stopped.
 */
export interface Clock {
  /** Milliseconds since the epoch, in (possibly simulated) node time. */
  now(): number;
  readonly speed: number;
  /** Calls `fn` every `intervalMs` of node time until the returned function is called. */
  every(intervalMs: number, fn: () => void): () => void;
  /** Calls `fn` once after `delayMs` of node time, unless cancelled. */
  after(delayMs: number, fn: () => void): () => void;
}

export class ScaledClock implements Clock {
  readonly speed: number;
  private readonly realStart: number;
  private readonly nodeStart: number;

  constructor(options: { speed?: number; start?: number } = {}) {
    this.speed = options.speed ?? 1;
    this.realStart = Date.now();
    this.nodeStart = options.start ?? this.realStart;
  }

  now(): number {
    return Math.round(this.nodeStart + (Date.now() - this.realStart) * this.speed);
  }

  private toReal(ms: number): number {
    return Math.max(1, Math.round(ms / this.speed));
  }

  every(intervalMs: number, fn: () => void): () => void {
    const timer = setInterval(fn, this.toReal(intervalMs));
    return () => clearInterval(timer);
  }

  after(delayMs: number, fn: () => void): () => void {
    const timer = setTimeout(fn, this.toReal(delayMs));
    return () => clearTimeout(timer);
  }
}
