/**
 * Catch-up requests (`want`) answered per peer: a token bucket each. A want
 * is a few bytes to send but up to one batch (256 KiB) of disk reads to
 * answer, so a peer that floods wants is slowed to `perSecond` (with a burst
 * for a link coming up), and what is refused is counted. An honest peer asks
 * again after its want times out (wantTimeoutMs), so nothing is lost.
 */
export interface WantRateLimitOptions {
  readonly perSecond: number;
  readonly burst: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class WantRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: WantRateLimitOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Takes one token of `peer`'s bucket: false if it is empty. */
  take(peer: string): boolean {
    const now = this.now();
    const { perSecond, burst } = this.options;
    const bucket = this.buckets.get(peer) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    this.buckets.set(peer, bucket); // one per linked peer: only wants from a peer we have a link to get here
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
