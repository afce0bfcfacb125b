/** What "healthy" means for a release on trial, criterion by criterion. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HealthWindow, type HealthCriteria } from '../../../../runtime/extensions/runtime-updates/health-window.js';

const criteria: HealthCriteria = { windowMs: 60_000, minReadings: 3, maxLoopStallMs: 5_000, needsMeshLink: false };

afterEach(() => {
  vi.useRealTimers();
});

function healthyWindow(c: HealthCriteria = criteria, linked = false): HealthWindow {
  const w = new HealthWindow(c, () => linked);
  w.started();
  for (let i = 0; i < 3; i++) w.reading();
  return w;
}

describe('the health window', () => {
  it('is healthy when the node started and read enough, and says what it saw', () => {
    const verdict = healthyWindow().judge();
    expect(verdict).toEqual({ healthy: true, reason: 'healthy for 60 s: started, 3 readings, longest loop stall 0 ms' });
  });

  it('names every criterion that failed', () => {
    const w = new HealthWindow({ ...criteria, needsMeshLink: true }, () => false);
    w.reading();
    const verdict = w.judge();
    expect(verdict.healthy).toBe(false);
    expect(verdict.reason).toBe('it did not finish starting within 60 s; only 1 readings in 60 s (at least 3 expected); no neighbour linked in 60 s');
  });

  it('needs a neighbour only when asked, and sees one that linked at any time in the window', () => {
    let linked = false;
    const w = new HealthWindow({ ...criteria, needsMeshLink: true }, () => linked);
    w.started();
    for (let i = 0; i < 3; i++) w.reading();
    expect(w.judge().healthy).toBe(false);
    linked = true;
    expect(w.judge()).toMatchObject({ healthy: true });
    linked = false; // it linked once: that is enough
    expect(w.judge().healthy).toBe(true);
  });

  it('counts a stalled event loop, from its one-second ticks', () => {
    vi.useFakeTimers();
    let now = 0;
    const w = new HealthWindow(criteria, () => false, () => now);
    w.started();
    for (let i = 0; i < 3; i++) w.reading();
    w.start();
    now += 1_000;
    vi.advanceTimersByTime(1_000);
    expect(w.seen.maxLoopStallMs).toBe(0);
    now += 8_000; // the tick came 7 s late
    vi.advanceTimersByTime(1_000);
    w.stop();
    expect(w.seen.maxLoopStallMs).toBe(7_000);
    expect(w.judge()).toEqual({ healthy: false, reason: 'its event loop stalled for 7.0 s (at most 5.0 s)' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
