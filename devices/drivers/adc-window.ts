/**
 * The analog reports of one pin between two readings, filtered: a reading is
 * the median of the reports since the previous one (a load cell's amplifier
 * picks up spikes from motors, radios and long wires; a median ignores a few
 * of them where a mean or one sample would not), with their spread.
 */

/** Reports kept between two readings: at Firmata's 100 ms sampling, the last 25 s. */
const MAX_REPORTS = 256;

export interface AdcFiltered {
  /** Median of the reports, in ADC counts. */
  readonly median: number;
  /** Largest minus smallest report, in ADC counts. */
  readonly spread: number;
  readonly reports: number;
}

export class AdcWindow {
  private reports: number[] = [];
  private lastAt: number | undefined;
  private readonly firstWaiters: (() => void)[] = [];

  /** Real time (ms) of the latest report, or undefined before the first. */
  get lastReportAt(): number | undefined {
    return this.lastAt;
  }

  push(count: number): void {
    if (!Number.isFinite(count)) return;
    this.reports.push(count);
    if (this.reports.length > MAX_REPORTS) this.reports.shift();
    this.lastAt = Date.now();
    for (const resolve of this.firstWaiters.splice(0)) resolve();
  }

  /** Resolves at the first report (at once if there was one). */
  firstReport(): Promise<void> {
    return this.lastAt !== undefined ? Promise.resolve() : new Promise((resolve) => this.firstWaiters.push(resolve));
  }

  /** The reports since the last take, filtered; undefined when none came (nothing new was measured). */
  take(): AdcFiltered | undefined {
    const reports = this.reports;
    if (reports.length === 0) return undefined;
    this.reports = [];
    const sorted = [...reports].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
    return { median, spread: (sorted.at(-1) ?? 0) - (sorted[0] ?? 0), reports: sorted.length };
  }
}
