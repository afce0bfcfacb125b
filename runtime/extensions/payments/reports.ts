/**
 * `pay/balance` and `pay/statement` from the channel book. A statement is
 * written the same from either end of the channels (parties sorted, records
 * sorted, no "we"/"they"), so two nodes that hold the same entries print the
 * same statement and the same digest: compare digests after a partition.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../canonical-json.js';
import { channelTotals, type ChannelBook } from './channel-book.js';

export interface BalanceRow {
  readonly peer: string;
  readonly unit: string;
  /** What this node owes the peer: its highest voucher to the peer, less what the peer recorded as settled. */
  readonly weOwe: number;
  /** What the peer owes this node, likewise. */
  readonly owedToUs: number;
  /** owedToUs - weOwe: bilateral netting (positive: the peer owes us). */
  readonly net: number;
  /** Settled in all, each way. */
  readonly settled: { readonly byUs: number; readonly byPeer: number };
  /** The credit this node gives the peer in this unit. */
  readonly creditLimit: number;
  /** The peer signed two histories on its channel to us (see pay/statement). */
  readonly forked: boolean;
}

/** Netting per (peer, unit), for every channel this node is an end of. */
export function balanceRows(book: ChannelBook, self: string, limitOf: (peer: string) => number, onlyPeer?: string): BalanceRow[] {
  const pairs = new Map<string, { peer: string; unit: string }>();
  for (const c of book.all()) {
    const peer = c.payer === self ? c.payee : c.payee === self ? c.payer : undefined;
    if (peer === undefined || (onlyPeer !== undefined && peer !== onlyPeer)) continue;
    pairs.set(`${peer}|${c.unit}`, { peer, unit: c.unit });
  }
  return [...pairs.values()].sort((a, b) => (a.peer + a.unit < b.peer + b.unit ? -1 : 1)).map(({ peer, unit }) => {
    const out = channelTotals(book.get(self, peer, unit));
    const into = channelTotals(book.get(peer, self, unit));
    return {
      peer, unit, weOwe: out.outstanding, owedToUs: into.outstanding, net: into.outstanding - out.outstanding,
      settled: { byUs: out.settled, byPeer: into.settled }, creditLimit: limitOf(peer), forked: into.forked,
    };
  });
}

export interface Statement {
  /** The two nodes, sorted. */
  readonly parties: readonly [string, string];
  readonly units: readonly {
    readonly unit: string;
    /** Per direction: the highest cumulative vouched, settled, outstanding. */
    readonly channels: readonly { payer: string; payee: string; vouched: number; settled: number; outstanding: number; seq: number }[];
    /** What parties[0] owes parties[1] after netting (negative: the other way). */
    readonly net: number;
    /** Vouchers and settlements held (the latest of each channel), sorted. */
    readonly records: readonly Record<string, unknown>[];
  }[];
  /** sha256 (base64url) of the canonical JSON of parties and units: equal on both ends when they hold the same entries. */
  readonly digest: string;
  /** Proofs of a forked payer seen here (not in the digest: one end may not have seen both vouchers). */
  readonly forks: readonly { payer: string; unit: string; kind: string; a: unknown; b: unknown }[];
}

export function statement(book: ChannelBook, self: string, peer: string, onlyUnit?: string): Statement {
  const parties = [self, peer].sort() as [string, string];
  const [p0, p1] = parties;
  const units = [...new Set(book.all().filter((c) => [c.payer, c.payee].sort().join() === parties.join()).map((c) => c.unit))]
    .filter((u) => onlyUnit === undefined || u === onlyUnit).sort();
  const body = units.map((unit) => {
    const directions = [[p0, p1], [p1, p0]] as const;
    const channels = directions.map(([payer, payee]) => ({ payer, payee, ...channelTotals(book.get(payer, payee, unit)) }))
      .map(({ forked: _f, ...totals }) => totals);
    const records = directions.flatMap(([payer, payee]) => {
      const c = book.get(payer, payee, unit);
      return [
        ...(c?.vouchers ?? []).map((v) => ({ kind: 'voucher', payer, payee, number: v.seq, cumulative: v.cumulative, t: v.t, ...(v.memo ? { memo: v.memo } : {}), sig: v.sig })),
        ...(c?.settlements ?? []).map((s) => ({ kind: 'settlement', payer, payee, number: s.n, amount: s.amount, total: s.total, t: s.t, ...(s.note !== undefined ? { note: s.note } : {}), sig: s.sig })),
      ];
    }).sort((a, b) => a.kind.localeCompare(b.kind) || a.payer.localeCompare(b.payer) || a.number - b.number);
    const [out, back] = channels as [typeof channels[number], typeof channels[number]];
    return { unit, channels, net: out.outstanding - back.outstanding, records };
  });
  const digest = createHash('sha256').update(canonicalJson({ parties, units: body })).digest('base64url');
  const forks = book.all().filter((c) => [c.payer, c.payee].sort().join() === parties.join() && (onlyUnit === undefined || c.unit === onlyUnit))
    .flatMap((c) => c.forks.map((f) => ({ payer: c.payer, unit: c.unit, kind: f.kind, a: f.a, b: f.b })));
  return { parties, units: body, digest, forks };
}
