/**
 * The health window of a release on trial: what "healthy" means before it is
 * kept. Within the window the node must have started, its event loop must
 * have kept turning (no stall longer than health.maxLoopStall; a longer one
 * is what the systemd watchdog kills), the device must have delivered
 * readings, and, where neighbours are configured, a neighbour must have
 * linked. Judged by the new release itself, as RAUC's "mark-good" is; the
 * launcher's boot count and backstop catch a release that cannot judge.
 *
 * Timed in real time (not the node clock, which runs faster in a simulation).
 */
export interface HealthCriteria {
  readonly windowMs: number;
  readonly minReadings: number;
  readonly maxLoopStallMs: number;
  readonly needsMeshLink: boolean;
}

export interface HealthVerdict {
  readonly healthy: boolean;
  /** One line: what held, or every criterion that failed. */
  readonly reason: string;
}

export interface HealthObservations {
  started: boolean;
  readings: number;
  maxLoopStallMs: number;
  meshLinked: boolean;
}

/** Watches one window: feed it events; `judge()` at the end. */
export class HealthWindow {
  readonly seen: HealthObservations = { started: false, readings: 0, maxLoopStallMs: 0, meshLinked: false };
  private tick: NodeJS.Timeout | undefined;
  private lastTick = 0;

  constructor(readonly criteria: HealthCriteria, private readonly meshLinked: () => boolean, private readonly now: () => number = () => performance.now()) {}

  /** Samples the loop once a second: a late tick is a stall. */
  start(): void {
    this.lastTick = this.now();
    this.tick = setInterval(() => {
      const at = this.now();
      this.seen.maxLoopStallMs = Math.max(this.seen.maxLoopStallMs, at - this.lastTick - 1_000);
      this.lastTick = at;
      if (!this.seen.meshLinked && this.meshLinked()) this.seen.meshLinked = true;
    }, 1_000);
  }

  stop(): void {
    if (this.tick !== undefined) clearInterval(this.tick);
    this.tick = undefined;
  }

  started(): void {
    this.seen.started = true;
  }

  reading(): void {
    this.seen.readings += 1;
  }

  judge(): HealthVerdict {
    if (!this.seen.meshLinked && this.meshLinked()) this.seen.meshLinked = true;
    const { criteria: c, seen } = this;
    const seconds = Math.round(c.windowMs / 1000);
    const failed: string[] = [];
    if (!seen.started) failed.push(`it did not finish starting within ${seconds} s`);
    if (seen.readings < c.minReadings) failed.push(`${seen.readings === 0 ? 'no readings' : `only ${seen.readings} readings`} in ${seconds} s (at least ${c.minReadings} expected)`);
    if (seen.maxLoopStallMs > c.maxLoopStallMs) failed.push(`its event loop stalled for ${(seen.maxLoopStallMs / 1000).toFixed(1)} s (at most ${(c.maxLoopStallMs / 1000).toFixed(1)} s)`);
    if (c.needsMeshLink && !seen.meshLinked) failed.push(`no neighbour linked in ${seconds} s`);
    if (failed.length > 0) return { healthy: false, reason: failed.join('; ') };
    return {
      healthy: true,
      reason: `healthy for ${seconds} s: started, ${seen.readings} readings, longest loop stall ${Math.max(0, Math.round(seen.maxLoopStallMs))} ms${c.needsMeshLink ? ', a neighbour linked' : ''}`,
    };
  }
}
