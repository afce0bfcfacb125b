/**
 * The provider's side: answer a call for proposals with a signed bid or a
 * refusal and its reason; take an award only if the proposal inside is one
 * this node signed (so a forged or altered one is refused); acknowledge
 * before starting; give exactly one result or failure per task. The task's
 * state is on disk before each step, and the node's own feed is the record
 * of what it already said: after a crash an acknowledged task with no result
 * in the feed is run again (the work is a pure function of the input), one
 * with a result is left alone, so a restart never yields a second result.
 */
import { mandateFault } from './mandate.js';
import { ownerOf, peerAllowed, sendDirect, type TaskEnv } from './env.js';
import type { TaskEntry } from './entries.js';
import { modelFor, runTask } from './kinds.js';
import type { TaskRecord } from './task-store.js';
import { proposalSignedBy, signProposal, type CallForProposals, type RefusalReason } from './wire.js';

type AwardEntry = Extract<TaskEntry, { type: 'task-award' }>['body'];

export class Provider {
  /** Tasks whose result or failure this node has put in its feed (found there at start, then kept up to date). */
  private readonly answered = new Set<string>();
  private readonly acknowledged = new Set<string>();

  constructor(private readonly env: TaskEnv) {}

  /** From this node's own feed, read at start: what it already acknowledged and answered. */
  noteOwn(entry: TaskEntry): void {
    if (entry.type === 'task-ack') this.acknowledged.add(`${entry.body.task}#${entry.body.attempt}`);
    if (entry.type === 'task-result' || entry.type === 'task-failure') this.answered.add(entry.body.task);
  }

  /** The reason to refuse `cfp` from `from`, or undefined to bid. */
  /** At an award the payer's mandate was checked with the bid: the rest is checked again (credit, this node's own mandate). */
  private async refusal(from: string, cfp: Pick<CallForProposals, 'kind' | 'input' | 'maxPrice' | 'unit' | 'mandate'>, atAward = false): Promise<RefusalReason | undefined> {
    const { env } = this;
    const mandate = env.mandate?.mandate;
    if (!peerAllowed(env, from)) return 'untrusted';
    if (cfp.mandate && mandateFault(cfp.mandate, from, ownerOf(env, from), env.now())) return 'untrusted';
    if (!mandate || Date.parse(mandate.expires) <= env.now() || !mandate.sell.kinds.includes(cfp.kind)) return 'policy';
    const offer = env.config.offers.find((o) => o.kind === cfp.kind);
    if (!offer) return 'policy';
    if (cfp.kind === 'hive-sound' && !modelFor(cfp.kind, env.resources.models)) return 'no-model';
    if ('channel' in cfp.input && !mandate.data.sellChannels.includes(cfp.input.channel)) return 'policy';
    if (offer.price > cfp.maxPrice || offer.unit !== cfp.unit) return 'price';
    if (offer.price < mandate.sell.minPrice) return 'policy';
    if (offer.price > 0) {
      if (!env.payments()) return 'policy'; // payments off: only free work
      // A payer's signed bounds, checked with the owner key this node trusts: priced work only inside them.
      const buy = cfp.mandate?.mandate.buy;
      if (!atAward && (!buy || !buy.kinds.includes(cfp.kind) || offer.price > buy.maxPrice)) return 'budget';
      const cap = mandate.creditLimitPerPeer;
      const credit = await env.run('pay/credit-check', { payer: from, unit: offer.unit, amount: offer.price, ...(cap === undefined ? {} : { limit: cap }) });
      const answer = credit.ok ? (credit.result as { ok?: boolean; reason?: string }) : { ok: false, reason: 'unknown-payer' };
      if (answer.ok !== true) return answer.reason === 'credit-limit' ? 'credit-limit' : 'untrusted';
    }
    const busy = env.store.all().filter((r) => r.role === 'provider' && r.phase === 'working').length;
    if (busy >= env.config.maxConcurrent) return 'busy';
    return undefined;
  }

  async onCall(from: string, cfp: CallForProposals): Promise<void> {
    const { env } = this;
    env.counters.increment('tasks.calls_received');
    const reason = await this.refusal(from, cfp);
    if (reason) {
      env.counters.increment(`tasks.refusals_sent.${reason}`);
      sendDirect(env, from, { m: 'refuse', task: cfp.task, reason });
      return;
    }
    const offer = env.config.offers.find((o) => o.kind === cfp.kind);
    const model = modelFor(cfp.kind, env.resources.models);
    const proposal = signProposal(env.node, {
      task: cfp.task, requester: from, bidder: env.mesh.nodeId, kind: cfp.kind, price: offer?.price ?? 0, unit: offer?.unit ?? cfp.unit,
      eta: offer?.eta ?? 0, validUntil: Math.min(cfp.deadline, env.now() + 10 * 60_000), ...(model ? { model } : {}),
    });
    env.counters.increment('tasks.offers');
    sendDirect(env, from, { m: 'propose', proposal });
  }

  /** Why an award is not one this node may take, or undefined. */
  private awardFault(from: string, award: AwardEntry): string | undefined {
    const { proposal } = award;
    if (proposal.bidder !== this.env.mesh.nodeId || !proposalSignedBy(proposal, this.env.node.publicKey)) return 'award-invalid: the proposal in it is not one this node signed';
    if (proposal.requester !== from || proposal.task !== award.task || proposal.kind !== award.kind) return 'award-invalid: the proposal is for another task or requester';
    if (proposal.validUntil < this.env.now()) return 'award-invalid: the proposal expired';
    return undefined;
  }

  async onEntry(from: string, entry: TaskEntry): Promise<void> {
    const { env } = this;
    if (entry.type === 'task-award') await env.serial(entry.body.task, () => this.onAward(from, entry.body));
    else if (entry.type === 'task-cancel') {
      await env.serial(entry.body.task, async () => {
        const record = env.store.get(entry.body.task);
        if (!record || record.role !== 'provider' || record.peer !== from || record.attempt !== entry.body.attempt || record.phase === 'completed' || record.phase === 'failed') return;
        record.phase = 'canceled';
        env.counters.increment('tasks.canceled');
        await env.store.save(record);
      });
    }
  }

  private async onAward(from: string, award: AwardEntry): Promise<void> {
    const { env } = this;
    const fault = this.awardFault(from, award);
    const existing = env.store.get(award.task);
    if (fault) {
      env.counters.increment('tasks.awards_refused');
      env.logger.warn({ task: award.task, from, fault }, 'task award refused');
      if (!existing && !this.answered.has(award.task)) await env.mesh.appendPrivate('task-failure', { task: award.task, attempt: award.attempt, reason: fault }, [from]);
      this.answered.add(award.task);
      return;
    }
    if (existing?.role === 'provider' && existing.attempt >= award.attempt) return; // seen (a restart reads the feeds again)
    const now = env.now();
    if (now > award.ackBy) {
      // Reached us too late to acknowledge (a partition): the requester has moved on to the next bidder. Nothing is said or done.
      env.counters.increment('tasks.awards_expired');
      return;
    }
    const record: TaskRecord = {
      id: award.task, role: 'provider', kind: award.kind, input: award.input, phase: 'working', peer: from, maxPrice: award.proposal.price, unit: award.proposal.unit,
      deadline: award.deadline, attempt: award.attempt, proposals: [], refusals: [], passedOver: [], award: award.proposal, created: now, updated: now,
    };
    const reason = await this.refusal(from, { kind: award.kind, input: award.input, maxPrice: award.proposal.price, unit: award.proposal.unit, mandate: undefined }, true);
    if (reason && reason !== 'busy') {
      record.phase = 'failed';
      record.failure = `refused at award: ${reason}`;
      await env.store.save(record);
      await env.mesh.appendPrivate('task-failure', { task: award.task, attempt: award.attempt, reason: record.failure }, [from]);
      this.answered.add(award.task);
      return;
    }
    env.counters.increment('tasks.awarded');
    await env.store.save(record); // working, on disk before the acknowledgement leaves
    await this.work(record);
  }

  /** Acknowledges (once) and does the work, unless the feed already holds its answer. */
  private async work(record: TaskRecord): Promise<void> {
    const { env } = this;
    const to = record.peer ?? '';
    if (!this.acknowledged.has(`${record.id}#${record.attempt}`)) {
      await env.mesh.appendPrivate('task-ack', { task: record.id, attempt: record.attempt }, [to]);
      this.acknowledged.add(`${record.id}#${record.attempt}`);
    }
    if (this.answered.has(record.id)) return;
    let output: Record<string, unknown> | undefined;
    let failure: string | undefined;
    try {
      output = await runTask(record.kind, record.input, env.resources, env.now());
    } catch (err) {
      failure = (err as Error).message;
    }
    const current = env.store.get(record.id);
    if (current?.phase === 'canceled' || this.answered.has(record.id)) return;
    this.answered.add(record.id);
    if (output) await env.mesh.appendPrivate('task-result', { task: record.id, attempt: record.attempt, output }, [to]);
    else await env.mesh.appendPrivate('task-failure', { task: record.id, attempt: record.attempt, reason: failure ?? 'failed' }, [to]);
    record.phase = output ? 'completed' : 'failed';
    record.result = output;
    record.failure = failure;
    env.counters.increment(output ? 'tasks.results_sent' : 'tasks.failures_sent');
    await env.store.save(record);
  }

  /** At start, after the own feed was read: tasks left working by a crash are finished (once) or, if answered, closed. */
  async resume(): Promise<void> {
    const { env } = this;
    for (const record of env.store.all()) {
      if (record.role !== 'provider' || record.phase !== 'working') continue;
      await env.serial(record.id, async () => {
        if (this.answered.has(record.id)) {
          record.phase = 'completed';
          await env.store.save(record);
          return;
        }
        env.counters.increment('tasks.resumed');
        await this.work(record);
      });
    }
  }
}
