/**
 * The requester's side of the contract net: the mandate check (anything
 * outside it waits for the owner), the call for proposals to linked peers the
 * mandate allows, the choice of the cheapest valid on-time bid, the award as
 * a sealed feed entry, and the watch for the acknowledgement and the result:
 * a winner that misses either is sent a cancellation and the task goes to
 * the next bidder. An accepted inference may be spot-checked; it is paid
 * through `pay/send` when payments are on.
 */
import { randomUUID } from 'node:crypto';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { peerAllowed, sendDirect, type TaskEnv } from './env.js';
import type { TaskEntry } from './entries.js';
import { spotCheck } from './kinds.js';
import type { TaskRecord } from './task-store.js';
import { proposalSignedBy, type SignedProposal, type TaskInput, type TaskKind } from './wire.js';

export interface TaskRequest {
  kind: TaskKind;
  input: TaskInput;
  maxPrice: number;
  /** Milliseconds from now until the result is due. */
  deadline: number;
}

export class Requester {
  constructor(private readonly env: TaskEnv) {}

  /** Why the mandate does not cover `request` now (it then waits for the owner), or undefined. */
  outsideMandate(request: Pick<TaskRequest, 'kind' | 'maxPrice'>): string | undefined {
    const { mandate, ledger } = this.env;
    if (!mandate) return 'no owner mandate (tasks.mandate)';
    const m = mandate.mandate;
    if (Date.parse(m.expires) <= this.env.now()) return `the mandate expired at ${m.expires}`;
    if (!m.buy.kinds.includes(request.kind)) return `the mandate does not allow buying ${request.kind}`;
    if (request.maxPrice > m.buy.maxPrice) return `max price ${request.maxPrice} is above the mandate's ${m.buy.maxPrice}`;
    const spent = ledger.spentToday(this.env.now());
    const held = this.inFlight();
    if (spent + held + request.maxPrice > m.dailyBudget) {
      return `budget: ${spent} of ${m.dailyBudget} ${m.unit} spent today${held > 0 ? ` and ${held} held by tasks under way` : ''}, this task may cost ${request.maxPrice}`;
    }
    return undefined;
  }

  /**
   * What tasks under way may still cost: the awarded price, or the maximum
   * while bids are open. Counted against the daily budget with what was
   * spent, so requests made in a burst cannot together pass it.
   */
  inFlight(): number {
    let held = 0;
    for (const r of this.env.store.all()) {
      if (r.role !== 'requester' || r.pending !== undefined) continue;
      if (r.phase === 'bidding') held += r.maxPrice;
      else if (r.phase === 'awarded' || r.phase === 'working') held += r.award?.price ?? r.maxPrice;
    }
    return held;
  }

  async request(request: TaskRequest): Promise<TaskRecord> {
    const { env } = this;
    const now = env.now();
    // Without payments a task can only be free: the call says so, and no priced bid is taken.
    const maxPrice = env.payments() ? request.maxPrice : 0;
    const record: TaskRecord = {
      id: randomUUID(), role: 'requester', kind: request.kind, input: request.input, phase: 'bidding', maxPrice,
      unit: env.mandate?.mandate.unit ?? 'credit', deadline: now + request.deadline, attempt: 0, proposals: [], refusals: [], passedOver: [], created: now, updated: now,
    };
    if (maxPrice !== request.maxPrice) record.note = `payments are off on this node: max price held at 0 (was ${request.maxPrice}), only free bids are taken`;
    env.counters.increment('tasks.requested');
    const outside = this.outsideMandate({ kind: request.kind, maxPrice });
    if (outside) {
      record.phase = 'input-required';
      record.pending = outside;
      env.counters.increment('tasks.pending');
      await env.store.save(record);
      env.logger.info({ task: record.id, why: outside }, 'task request waits for the owner');
      return record;
    }
    await this.callForProposals(record);
    return record;
  }

  /** The owner approves a pending request: it goes out as asked, this once. */
  async approve(id: string): Promise<TaskRecord> {
    const record = this.pendingRecord(id);
    record.pending = undefined;
    record.deadline = Math.max(record.deadline, this.env.now() + this.env.config.bidWindow + this.env.config.ackTimeout);
    this.env.counters.increment('tasks.approved');
    await this.callForProposals(record, true);
    return record;
  }

  async reject(id: string): Promise<TaskRecord> {
    const record = this.pendingRecord(id);
    record.phase = 'rejected';
    this.env.counters.increment('tasks.rejected');
    await this.env.store.save(record);
    return record;
  }

  private pendingRecord(id: string): TaskRecord {
    const record = this.env.store.get(id);
    if (!record || record.role !== 'requester') throw new ApiaryError(ErrorCodes.COMMAND_INVALID, `id: no task ${id} requested by this node`, { hint: 'see `apiary tasks pending`' });
    if (record.phase !== 'input-required') throw new ApiaryError(ErrorCodes.COMMAND_INVALID, `id: task ${id} is ${record.phase}, not waiting for the owner`, { hint: 'see `apiary tasks pending`' });
    return record;
  }

  /** To every linked peer the mandate allows (any trusted one when the owner approved this task). */
  private async callForProposals(record: TaskRecord, ownerApproved = false): Promise<void> {
    const { env } = this;
    const bidBy = env.now() + env.config.bidWindow;
    record.phase = 'bidding';
    record.bidBy = bidBy;
    await env.store.save(record);
    const peers = env.mesh.linkedPeers().filter((peer) => ownerApproved ? env.mesh.directory.get(peer) !== undefined : peerAllowed(env, peer));
    for (const peer of peers) {
      sendDirect(env, peer, {
        m: 'cfp', task: record.id, kind: record.kind, input: record.input, maxPrice: record.maxPrice, unit: record.unit, bidBy, deadline: record.deadline,
        ...(env.mandate ? { mandate: env.mandate } : {}),
      });
    }
    env.counters.increment('tasks.calls');
  }

  /** A proposal (direct, may be lost): kept if signed by its sender, for this task, on time and within the price. */
  async onProposal(from: string, proposal: SignedProposal): Promise<void> {
    const { env } = this;
    await env.serial(proposal.task, async () => {
      const record = env.store.get(proposal.task);
      const key = env.mesh.directory.get(from)?.node;
      if (!record || record.role !== 'requester' || proposal.bidder !== from || proposal.requester !== env.mesh.nodeId || key === undefined || !proposalSignedBy(proposal, key)) {
        env.counters.increment('tasks.bids_refused');
        return;
      }
      if (record.phase !== 'bidding' || env.now() > (record.bidBy ?? 0)) {
        env.counters.increment('tasks.bids_late');
        return;
      }
      if (proposal.kind !== record.kind || proposal.price > record.maxPrice || proposal.unit !== record.unit) {
        env.counters.increment('tasks.bids_refused');
        return;
      }
      env.counters.increment('tasks.bids');
      record.proposals = [...record.proposals.filter((p) => p.bidder !== from), proposal];
      await env.store.save(record);
    });
  }

  async onRefusal(from: string, task: string, reason: TaskRecord['refusals'][number]['reason']): Promise<void> {
    const { env } = this;
    env.counters.increment(`tasks.refused.${reason}`);
    await env.serial(task, async () => {
      const record = env.store.get(task);
      if (!record || record.role !== 'requester' || record.refusals.some((r) => r.bidder === from)) return;
      record.refusals.push({ bidder: from, reason });
      await env.store.save(record);
    });
  }

  /** Deadlines: bids closed, an award not acknowledged, a result not in. Called on a timer; state on disk, so it resumes after a restart. */
  async tick(): Promise<void> {
    const { env } = this;
    const now = env.now();
    for (const record of env.store.all()) {
      if (record.role !== 'requester') continue;
      if (record.phase === 'bidding' && now > (record.bidBy ?? 0)) await env.serial(record.id, () => this.awardNext(record, undefined));
      else if (record.phase === 'awarded' && now > (record.ackBy ?? 0)) await env.serial(record.id, () => this.awardNext(record, 'not acknowledged in time'));
      else if (record.phase === 'working' && now > (record.resultBy ?? 0)) await env.serial(record.id, () => this.awardNext(record, 'missed the deadline'));
    }
  }

  /** Gives up on the current winner (if any, with a sealed cancellation) and awards the next best bid. */
  private async awardNext(record: TaskRecord, why: string | undefined): Promise<void> {
    const { env } = this;
    const now = env.now();
    if (why && record.award) {
      const loser = record.award.bidder;
      record.passedOver.push(loser);
      record.givenUp = [...(record.givenUp ?? []), { bidder: loser, why }];
      env.counters.increment('tasks.reawards');
      await env.ledger.note(loser, { missed: 1 });
      await env.mesh.appendPrivate('task-cancel', { task: record.id, attempt: record.attempt, reason: why }, [loser]);
    }
    const best = record.proposals
      .filter((p) => !record.passedOver.includes(p.bidder) && p.validUntil > now && env.ledger.score(p.bidder) >= env.config.minReputation)
      .sort((a, b) => a.price - b.price || a.eta - b.eta || (a.bidder < b.bidder ? -1 : 1))[0];
    if (!best || now >= record.deadline || record.attempt >= 64) {
      record.phase = 'failed';
      const last = record.givenUp?.at(-1);
      record.failure = best ? 'deadline passed' : record.proposals.length === 0 ? 'no bids' : `no bidder left${last ? ` (the last ${last.why})` : ''}`;
      env.counters.increment('tasks.failed');
      await env.store.save(record);
      return;
    }
    record.attempt += 1;
    record.award = best;
    record.peer = best.bidder;
    record.phase = 'awarded';
    record.ackBy = now + env.config.ackTimeout;
    record.resultBy = Math.min(record.deadline, now + best.eta + env.config.grace);
    await env.store.save(record); // the award is on disk before it is in the feed
    await env.mesh.appendPrivate('task-award', { task: record.id, attempt: record.attempt, kind: record.kind, input: record.input, deadline: record.deadline, ackBy: record.ackBy, proposal: best }, [best.bidder]);
    env.counters.increment('tasks.awards');
  }

  /** An acknowledgement, result or failure from a provider (a sealed feed entry: read again after a restart, so idempotent). */
  async onEntry(from: string, entry: TaskEntry): Promise<void> {
    const { env } = this;
    if (entry.type === 'task-award' || entry.type === 'task-cancel') return;
    await env.serial(entry.body.task, async () => {
      const record = env.store.get(entry.body.task);
      if (!record || record.role !== 'requester') return;
      const current = record.award?.bidder === from && record.attempt === entry.body.attempt && (record.phase === 'awarded' || record.phase === 'working');
      if (!current) {
        if (entry.type === 'task-result' && record.phase === 'completed' && record.award?.bidder === from) return; // the same entry again
        if (entry.type === 'task-result') env.counters.increment('tasks.results_ignored');
        return;
      }
      if (entry.type === 'task-ack') {
        if (record.phase !== 'awarded') return;
        record.phase = 'working';
        env.counters.increment('tasks.acks');
        await env.store.save(record);
      } else if (entry.type === 'task-failure') {
        env.counters.increment('tasks.failures');
        await env.ledger.note(from, { failures: 1 });
        await this.awardNext(record, `failed: ${entry.body.reason}`);
      } else {
        await this.accept(record, from, entry.body.output);
      }
    });
  }

  private async accept(record: TaskRecord, from: string, output: Record<string, unknown>): Promise<void> {
    const { env } = this;
    env.counters.increment('tasks.results');
    record.result = output;
    if (Math.random() < env.config.spotCheck) {
      record.check = await spotCheck(record.kind, record.input, output, env.resources.models).catch((err: unknown) => ({ verdict: 'skipped' as const, detail: `re-run failed: ${(err as Error).message}` }));
      env.counters.increment(`tasks.checks_${record.check.verdict}`);
    }
    const failed = record.check?.verdict === 'failed';
    await env.ledger.note(from, { results: 1, ...(record.check && record.check.verdict !== 'skipped' ? { checks: 1 } : {}), ...(failed ? { failedChecks: 1 } : {}) });
    const price = record.award?.price ?? 0;
    // A crash after paying and before the record below is saved leaves it working, and the result is read again at the restart: never pay twice.
    const paidBefore = !failed && price > 0 ? await this.voucherFor(record, from) : undefined;
    if (paidBefore) {
      record.paid = { amount: price, voucher: paidBefore };
      env.counters.increment('tasks.paid_before_restart');
    } else if (!failed && price > 0) {
      await env.ledger.commit(price, env.now());
      const paid = await env.run('pay/send', { payee: from, unit: record.unit, amount: price, memo: { task: record.id } });
      record.paid = paid.ok ? { amount: price, voucher: paid.result } : { amount: 0, error: paid.error };
      env.counters.increment(paid.ok ? 'tasks.paid' : 'tasks.pay_errors');
    }
    // Settled only once paid: whoever reads the record sees the payment with the phase.
    record.phase = failed ? 'failed' : 'completed';
    if (failed) record.failure = `spot-check failed: ${record.check?.detail ?? ''}`;
    await env.store.save(record);
  }

  /** The voucher this node already signed to `payee` for this task (its memo names the task), from the payments book. */
  private async voucherFor(record: TaskRecord, payee: string): Promise<Record<string, unknown> | undefined> {
    const outcome = await this.env.run('pay/statement', { peer: payee, unit: record.unit });
    if (!outcome.ok) return undefined;
    const records = (outcome.result as { units: { records: Record<string, unknown>[] }[] }).units[0]?.records ?? [];
    return records.find((r) => r.kind === 'voucher' && r.payer === this.env.mesh.nodeId && (r.memo as { task?: string } | undefined)?.task === record.id);
  }
}
