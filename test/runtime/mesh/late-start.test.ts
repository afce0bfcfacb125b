import { describe, expect, it } from 'vitest';
import { LateStarts } from '../../../runtime/mesh/late-start.js';

describe('late feed starts', () => {
  it('waits for every other holder, takes the lowest start, and does not wait for a silent one', () => {
    const starts = new LateStarts();
    // p says the feed starts at 5; q also advertises it and has not answered.
    expect(starts.claim('origin', 'p', 5, ['q'])).toBe(false);
    expect(starts.askOthersFirst('origin', 'p', ['q'])).toBe(true);
    expect(starts.askOthersFirst('origin', 'q', ['p'])).toBe(false);
    // q says 3: lower, so q's start is taken, not p's.
    expect(starts.claim('origin', 'q', 3, ['p'])).toBe(true);
    expect(starts.claim('origin', 'p', 5, ['q'])).toBe(false);

    // A holder that does not answer in time no longer holds the start back.
    const other = new LateStarts();
    expect(other.claim('origin', 'p', 5, ['q'])).toBe(false);
    other.noAnswer('origin', 'q');
    expect(other.askOthersFirst('origin', 'p', ['q'])).toBe(false);
    expect(other.claim('origin', 'p', 5, ['q'])).toBe(true);
    // No pending late start: nothing is recorded for a want that timed out.
    other.started('origin');
    other.noAnswer('origin', 'q');
    expect(other.askOthersFirst('origin', 'q', ['p'])).toBe(false);
  });

  it('forgets a peer whose link went down', () => {
    const starts = new LateStarts();
    expect(starts.claim('origin', 'p', 5, ['q'])).toBe(false);
    starts.forgetPeer('p');
    expect(starts.askOthersFirst('origin', 'p', ['q'])).toBe(false);
  });
});
