/**
 * One node's side of its payment channels: signs vouchers (as payer) and
 * settlements (as payee) into sealed entries of its own feed, and reads
 * those of its peers (and its own, coming back) from the feeds into the
 * channel book. Everything arrives through the mesh's gossip, so it
 * survives partitions and restarts; nothing here talks to a peer directly.
 */
import type { Counters } from '../../counters.js';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import type { NodeIdentity } from '../../identity/identity.js';
import type { Logger } from '../../log.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import { PRIVATE_ENTRY_TYPE, type Mesh } from '../../mesh/mesh.js';
import { ChannelBook, channelKey, channelTotals } from './channel-book.js';
import type { CreditCheck, PaymentParts } from './commands.js';
import { creditLimitOf, MAX_AMOUNT } from './config.js';
import type { IssuedState } from './issued-state.js';
import { balanceRows, statement, type BalanceRow, type Statement } from './reports.js';
import {
  checkSettlement, checkVoucher, SETTLEMENT_ENTRY_TYPE, signSettlement, signVoucher, VOUCHER_ENTRY_TYPE, type Settlement, type Voucher,
} from './signed-records.js';

export interface PaymentServiceOptions {
  mesh: Mesh;
  identity: NodeIdentity;
  config: { readonly creditLimit: number; readonly perPeer: Readonly<Record<string, number>>; readonly units: readonly string[] };
  counters: Counters;
  logger: Logger;
  state: IssuedState;
  /** Told after this node appended an entry (the node's `feed-append` event). */
  appended(type: string): Promise<void>;
}

const refused = (message: string, hint?: string) => new ApiaryError(ErrorCodes.PAYMENT_REFUSED, message, hint ? { hint } : {});

export class PaymentService implements PaymentParts {
  readonly book = new ChannelBook();
  /** Signing one record at a time: each takes the number after the last. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: PaymentServiceOptions) {}

  private get self(): string {
    return this.options.identity.nodeId;
  }

  /** Loads what this node signed, and reads every payment entry of the feeds it holds (its own included). */
  async open(): Promise<void> {
    const { mesh, state } = this.options;
    await state.load();
    for (const origin of Object.keys(mesh.store.have())) {
      for await (const entry of mesh.store.read(origin, 1)) this.take(entry, true);
    }
    await state.save();
  }

  /** An entry that arrived over the mesh (a peer's, or one of ours coming back after a restore). */
  onEntry(entry: FeedEntry): Promise<void> {
    return this.take(entry, false) ? this.options.state.save() : Promise.resolve();
  }

  /** Reads a payment record out of a sealed entry addressed to this node; true if a mark of our own moved (to be saved). */
  private take(entry: FeedEntry, quiet: boolean): boolean {
    if (entry.type !== PRIVATE_ENTRY_TYPE) return false;
    const opened = this.options.mesh.readEntry(entry);
    if (!opened || (opened.type !== VOUCHER_ENTRY_TYPE && opened.type !== SETTLEMENT_ENTRY_TYPE)) return false;
    const count = (name: string) => { if (!quiet) this.options.counters.increment(`payments.${name}`); };
    const voucher = opened.type === VOUCHER_ENTRY_TYPE;
    const checked = voucher ? checkVoucher(opened.body, entry.key) : checkSettlement(opened.body, entry.key);
    const kind = voucher ? 'voucher' : 'settlement';
    if (!checked.ok) {
      count(`refused.${kind}_${checked.reason}`);
      return false;
    }
    const record = checked.record;
    // The signer is the feed's origin: a voucher by the payer, a settlement by the payee. Only channels we are an end of.
    const signer = voucher ? record.payer : record.payee;
    if (signer !== entry.origin) return (count(`refused.${kind}_not_signer`), false);
    if (record.payer !== this.self && record.payee !== this.self) return (count(`refused.${kind}_misaddressed`), false);
    // Only the configured units: a peer cannot make this node hold a channel per made-up unit name.
    if (!this.options.config.units.includes(record.unit)) return (count(`refused.${kind}_unit`), false);
    const key = channelKey(record.payer, record.payee, record.unit);
    if (voucher) {
      const v = record as Voucher;
      const verdict = this.book.addVoucher(v);
      if (verdict === 'fork') {
        count('forks');
        this.options.logger.warn({ payer: v.payer, unit: v.unit, seq: v.seq }, 'payments: a payer signed two vouchers that contradict each other (kept as evidence; see pay/statement)');
      } else count(verdict === 'stale' ? 'vouchers_stale' : verdict === 'late' ? 'vouchers_late' : 'vouchers_received');
      return v.payer === this.self && this.options.state.raise('vouchers', key, { seq: v.seq, total: v.cumulative });
    }
    const s = record as Settlement;
    const verdict = this.book.addSettlement(s);
    count(verdict === 'accepted' ? 'settlements_received' : verdict === 'stale' ? 'settlements_stale' : 'settlements_conflicting');
    return s.payee === this.self && this.options.state.raise('settlements', key, { seq: s.n, total: s.total });
  }

  private checkUnit(unit: string): void {
    if (!this.options.config.units.includes(unit)) {
      throw refused(`unit "${unit}" is not one this node uses`, `use one of ${this.options.config.units.join(', ')} (payments.units)`);
    }
  }

  /**
   * Refuses to sign until this node knows it is not behind on its own feed:
   * at least one peer heard since start, and none of the peers heard holds
   * more of our own feed than we do (a data dir restored from an older copy:
   * our own entries come back from them first). A node with no peer in reach
   * could not deliver a voucher anyway. Left: a restored node whose peers in
   * reach all lack its newer entries (issued-state.ts).
   */
  private checkCaughtUp(): void {
    const peers = this.options.mesh.status().peers as { nodeId: string; lastSeen: string | null; weLack: Record<string, number> }[];
    const heard = peers.filter((p) => p.lastSeen !== null);
    const ahead = heard.find((p) => (p.weLack[this.self] ?? 0) > 0);
    if (heard.length === 0 || ahead) this.options.counters.increment('payments.sign_deferred');
    if (heard.length === 0) {
      throw refused('no peer heard from since this node started: it signs nothing until it can check that it holds all of its own feed', 'link a neighbour (mesh.neighbours), wait a few seconds and try again');
    }
    if (ahead) {
      throw refused(`this node's own feed is behind the copy node ${ahead.nodeId} holds (restored from a backup?): it signs nothing until it has caught up`, 'wait a few seconds and try again');
    }
  }

  private checkPeer(peer: string, role: string): void {
    if (peer === this.self) throw refused(`the ${role} is this node itself`, 'name another node');
    if (!this.options.mesh.directory.get(peer)) {
      throw refused(`node ${peer} is not known here (no certificate): its entries cannot be sealed to it`, 'link the two nodes and trust its owner (mesh.trust.owners), then try again');
    }
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  send(payee: string, unit: string, amount: number, memo: { task?: string } | undefined): Promise<Voucher> {
    this.checkUnit(unit);
    this.checkPeer(payee, 'payee');
    return this.serial(async () => {
      this.checkCaughtUp();
      const { state, identity, mesh, counters } = this.options;
      const key = channelKey(this.self, payee, unit);
      const mark = state.voucher(key);
      const held = channelTotals(this.book.get(this.self, payee, unit));
      // Never below what this node signed: the highest of its state file and of its own vouchers in the feeds.
      const seq = Math.max(mark.seq, held.seq) + 1;
      const cumulative = Math.max(mark.total, held.vouched) + amount;
      if (cumulative > MAX_AMOUNT) throw refused(`the channel to ${payee} would pass ${MAX_AMOUNT} ${unit}`, 'settle with its owner first (pay/settle on its side)');
      const voucher = signVoucher(identity, { payer: this.self, payee, unit, seq, cumulative, t: Date.now(), ...(memo?.task !== undefined ? { memo: { task: memo.task } } : {}) });
      state.raise('vouchers', key, { seq, total: cumulative });
      await state.save(); // durable before it can leave the node
      this.book.addVoucher(voucher);
      await mesh.appendPrivate(VOUCHER_ENTRY_TYPE, voucher, [payee]);
      counters.increment('payments.vouchers_issued');
      await this.options.appended(VOUCHER_ENTRY_TYPE);
      return voucher;
    });
  }

  settle(peer: string, unit: string, amount: number, note: string | undefined): Promise<Settlement> {
    this.checkUnit(unit);
    this.checkPeer(peer, 'payer');
    return this.serial(async () => {
      this.checkCaughtUp();
      const { state, identity, mesh, counters } = this.options;
      const key = channelKey(peer, this.self, unit);
      const held = channelTotals(this.book.get(peer, this.self, unit));
      if (amount > held.outstanding) throw refused(`node ${peer} owes ${held.outstanding} ${unit} here; a settlement of ${amount} is more than that`, `settle at most ${held.outstanding}`);
      const mark = state.settlement(key);
      const last = this.book.get(peer, this.self, unit)?.settlements.at(-1);
      const n = Math.max(mark.seq, last?.n ?? 0) + 1;
      const total = Math.max(mark.total, held.settled) + amount;
      const settlement = signSettlement(identity, { payer: peer, payee: this.self, unit, n, amount, total, t: Date.now(), ...(note !== undefined ? { note } : {}) });
      state.raise('settlements', key, { seq: n, total });
      await state.save();
      this.book.addSettlement(settlement);
      await mesh.appendPrivate(SETTLEMENT_ENTRY_TYPE, settlement, [peer]);
      counters.increment('payments.settlements_recorded');
      await this.options.appended(SETTLEMENT_ENTRY_TYPE);
      return settlement;
    });
  }

  /** `cap`: a lower limit from elsewhere (the owner mandate's creditLimitPerPeer); the lower of the two applies. */
  creditCheck(payer: string, unit: string, amount: number, cap?: number): CreditCheck {
    this.checkUnit(unit);
    const limit = Math.min(creditLimitOf(this.options.config, payer), cap ?? Number.POSITIVE_INFINITY);
    const known = payer !== this.self && this.options.mesh.directory.get(payer) !== undefined;
    const row = balanceRows(this.book, this.self, () => limit, payer).find((r) => r.unit === unit);
    const outstanding = row?.net ?? 0;
    const refuse = (reason: 'credit-limit' | 'unknown-payer' | 'forked'): CreditCheck => {
      this.options.counters.increment(`payments.credit_refused.${reason}`);
      return { ok: false, reason, outstanding, limit };
    };
    if (!known) return refuse('unknown-payer');
    if (row?.forked) return refuse('forked');
    if (outstanding + amount > limit) return refuse('credit-limit');
    return { ok: true, outstanding, limit };
  }

  balance(peer: string | undefined): BalanceRow[] {
    return balanceRows(this.book, this.self, (p) => creditLimitOf(this.options.config, p), peer);
  }

  statement(peer: string, unit: string | undefined): Statement {
    return statement(this.book, this.self, peer, unit);
  }

  /** For `apiary status`: totals per unit, and how many channels and forked payers. */
  status(): Record<string, unknown> {
    const rows = this.balance(undefined);
    const sum = (pick: (r: BalanceRow) => number) => {
      const out: Record<string, number> = {};
      for (const r of rows) out[r.unit] = (out[r.unit] ?? 0) + pick(r);
      return out;
    };
    return { channels: this.book.all().length, peers: new Set(rows.map((r) => r.peer)).size, owedToUs: sum((r) => r.owedToUs), weOwe: sum((r) => r.weOwe), forkedPayers: rows.filter((r) => r.forked).length };
  }

  /** Waits for a signing in progress (stop). */
  async idle(): Promise<void> {
    await this.queue;
  }
}
