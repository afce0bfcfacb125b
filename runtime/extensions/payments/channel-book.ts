/**
 * Every payment channel this node takes part in, as payer or payee: per
 * (payer, payee, unit), the highest voucher, a bounded window of the latest
 * ones, the settlements, and any proof that the payer signed two histories.
 * Vouchers come from the payer's feed (ours included: our own are read back
 * from it), so both ends of a channel build the same book from the same
 * entries, in any order.
 *
 * Memory per channel is bounded: HISTORY vouchers, HISTORY settlements and
 * MAX_FORKS pieces of evidence; what a peer can make us hold in all is
 * bounded by the mesh's replication budgets.
 */
import { recordHash, sameContent, type Settlement, type Voucher } from './signed-records.js';

/** Vouchers and settlements kept per channel (the latest, by number). */
export const HISTORY = 64;
export const MAX_FORKS = 8;

/** Two vouchers signed by the same payer on one channel that cannot both be honest. */
export interface ForkEvidence {
  readonly kind: 'same-seq' | 'cumulative-went-down';
  readonly a: Voucher;
  readonly b: Voucher;
}

export interface Channel {
  readonly payer: string;
  readonly payee: string;
  readonly unit: string;
  /** Vouchers, ascending seq, the highest last; at most HISTORY. */
  readonly vouchers: Voucher[];
  /** Settlements, ascending n; at most HISTORY. */
  readonly settlements: Settlement[];
  readonly forks: ForkEvidence[];
}

/** accepted: the new highest; late: an older one not held before (amounts unchanged); stale: held already, or older than the window. */
export type VoucherVerdict = 'accepted' | 'late' | 'stale' | 'fork';
export type SettlementVerdict = 'accepted' | 'stale' | 'conflict';

export function channelKey(payer: string, payee: string, unit: string): string {
  return `${payer}|${payee}|${unit}`;
}

export class ChannelBook {
  private readonly channels = new Map<string, Channel>();

  get(payer: string, payee: string, unit: string): Channel | undefined {
    return this.channels.get(channelKey(payer, payee, unit));
  }

  all(): Channel[] {
    return [...this.channels.values()];
  }

  private channel(payer: string, payee: string, unit: string): Channel {
    const key = channelKey(payer, payee, unit);
    let channel = this.channels.get(key);
    if (!channel) this.channels.set(key, (channel = { payer, payee, unit, vouchers: [], settlements: [], forks: [] }));
    return channel;
  }

  /**
   * Takes a verified voucher. Kept if it is above the highest (a higher seq,
   * and a cumulative that did not go down); a repeated one is `stale`
   * (ignored), an older one not held yet `late` (listed, no amount changes); one that contradicts a voucher held (same seq and other
   * content, or a higher seq with a lower cumulative) is a `fork`: both are
   * kept as evidence, and neither changes what is owed.
   */
  addVoucher(v: Voucher): VoucherVerdict {
    const channel = this.channel(v.payer, v.payee, v.unit);
    const twin = channel.vouchers.find((held) => held.seq === v.seq);
    if (twin) return sameContent(twin, v) ? 'stale' : this.fork(channel, 'same-seq', twin, v);
    for (const held of channel.vouchers) {
      const [lower, higher] = held.seq < v.seq ? [held, v] : [v, held];
      if (lower.cumulative > higher.cumulative) return this.fork(channel, 'cumulative-went-down', lower, higher);
    }
    const highest = channel.vouchers.at(-1);
    const below = highest !== undefined && v.seq < highest.seq;
    // A consistent voucher older than the highest changes no amount; it is kept (when inside the window) so both ends list the same ones.
    if (below && channel.vouchers.length >= HISTORY && v.seq < (channel.vouchers[0] as Voucher).seq) return 'stale';
    channel.vouchers.push(v);
    channel.vouchers.sort((a, b) => a.seq - b.seq);
    if (channel.vouchers.length > HISTORY) channel.vouchers.splice(0, channel.vouchers.length - HISTORY);
    return below ? 'late' : 'accepted';
  }

  private fork(channel: Channel, kind: ForkEvidence['kind'], a: Voucher, b: Voucher): 'fork' {
    const known = channel.forks.some((f) => recordHash(f.b) === recordHash(b));
    if (!known && channel.forks.length < MAX_FORKS) channel.forks.push({ kind, a, b });
    return 'fork';
  }

  /** Takes a verified settlement: kept unless held already (stale) or its total contradicts one held (conflict). */
  addSettlement(s: Settlement): SettlementVerdict {
    const channel = this.channel(s.payer, s.payee, s.unit);
    const same = channel.settlements.find((held) => held.n === s.n);
    if (same) return sameContent(same, s) ? 'stale' : 'conflict';
    // Totals must rise with n: a settlement whose total is out of line with a neighbour's contradicts it.
    if (channel.settlements.some((held) => (held.n < s.n ? held.total > s.total - s.amount : held.total - held.amount < s.total))) return 'conflict';
    if (channel.settlements.length >= HISTORY && s.n < (channel.settlements[0] as Settlement).n) return 'stale';
    channel.settlements.push(s);
    channel.settlements.sort((a, b) => a.n - b.n);
    if (channel.settlements.length > HISTORY) channel.settlements.splice(0, channel.settlements.length - HISTORY);
    return 'accepted';
  }
}

/** What a channel adds up to: vouched (the highest cumulative), settled (the highest total), outstanding (their difference, never below 0). */
export function channelTotals(channel: Channel | undefined): { vouched: number; settled: number; outstanding: number; seq: number; forked: boolean } {
  const vouched = channel?.vouchers.at(-1)?.cumulative ?? 0;
  const settled = channel?.settlements.at(-1)?.total ?? 0;
  return { vouched, settled, outstanding: Math.max(0, vouched - settled), seq: channel?.vouchers.at(-1)?.seq ?? 0, forked: (channel?.forks.length ?? 0) > 0 };
}
