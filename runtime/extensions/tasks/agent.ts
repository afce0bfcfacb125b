/**
 * The task agent: the requester and provider sides over one mesh, fed by the
 * direct contract-net messages (mesh `task`), the sealed task entries
 * addressed to this node (mesh `private`, and a read of the feeds at start,
 * so nothing said while the node was down is missed), and a timer for the
 * deadlines. Also what `apiary status` and the commands show.
 */
import type { CommandOutcome } from '../../commands/command-registry.js';
import type { Counters } from '../../counters.js';
import type { NodeIdentity } from '../../identity/identity.js';
import type { Logger } from '../../log.js';
import type { Mesh } from '../../mesh/mesh.js';
import type { TaskAgentConfig } from './config.js';
import { parseTaskEntry, type TaskEntry } from './entries.js';
import type { TaskEnv } from './env.js';
import { modelFor, type WorkResources } from './kinds.js';
import { Ledger } from './ledger.js';
import type { SignedMandate } from './mandate.js';
import { Provider } from './provider.js';
import { Requester, type TaskRequest } from './requester.js';
import { TaskStore, type TaskRecord } from './task-store.js';
import { decodeDirect } from './wire.js';

/** The shared-state map of what each node offers (its writer is the node named by the key). */
export const CAPABILITIES_MAP = 'capabilities';
/** Largest per-peer burst of direct task messages taken, then this many per second (a flood is dropped and counted). */
const DIRECT_BURST = 50;
const DIRECT_PER_SECOND = 20;

export interface TaskAgentOptions {
  mesh: Mesh;
  node: NodeIdentity;
  config: TaskAgentConfig;
  mandate: SignedMandate | undefined;
  dataDir: string;
  counters: Counters;
  logger: Logger;
  resources: WorkResources;
  run(name: string, args: unknown): Promise<CommandOutcome>;
  payments(): boolean;
  now?: () => number;
  /** Deadline checks this often. */
  tickMs?: number;
}

export class TaskAgent {
  readonly store: TaskStore;
  readonly ledger: Ledger;
  readonly requester: Requester;
  readonly provider: Provider;
  private readonly env: TaskEnv;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly onTask = (from: string, line: Buffer) => this.track(this.direct(from, line));
  private readonly onPrivate = (message: { origin: string; type: string; body: unknown }) => this.track(this.entry(message.origin, message.type, message.body));

  constructor(private readonly options: TaskAgentOptions) {
    this.store = new TaskStore(options.dataDir);
    this.ledger = new Ledger(options.dataDir);
    const now = options.now ?? (() => Date.now());
    this.env = {
      mesh: options.mesh, node: options.node, config: options.config, mandate: options.mandate, store: this.store, ledger: this.ledger,
      counters: options.counters, logger: options.logger, resources: options.resources, now,
      run: (name, args) => options.run(name, args), payments: () => options.payments(),
      serial: (task, fn) => {
        const next = (this.locks.get(task) ?? Promise.resolve()).then(fn, fn);
        const settled = next.catch(() => undefined);
        this.locks.set(task, settled);
        void settled.then(() => { if (this.locks.get(task) === settled) this.locks.delete(task); });
        return next;
      },
    };
    this.requester = new Requester(this.env);
    this.provider = new Provider(this.env);
  }

  /** Opens the stores, reads the task entries already in the feeds (own first), resumes interrupted work, and listens. */
  async start(): Promise<void> {
    const { mesh } = this.options;
    await this.store.open();
    await this.ledger.open();
    this.running = true;
    mesh.on('task', this.onTask);
    mesh.on('private', this.onPrivate);
    for await (const entry of mesh.store.read(mesh.nodeId)) {
      const read = mesh.readEntry(entry);
      const parsed = read && parseTaskEntry(read.type, read.body);
      if (parsed && parsed !== 'malformed') this.provider.noteOwn(parsed);
    }
    for (const origin of Object.keys(mesh.store.have())) {
      if (origin === mesh.nodeId) continue;
      for await (const entry of mesh.store.read(origin)) {
        const read = mesh.readEntry(entry);
        if (read) await this.entry(origin, read.type, read.body);
      }
    }
    await this.provider.resume();
    await this.publishOffers();
    this.timer = setInterval(() => this.track(this.requester.tick()), this.options.tickMs ?? 200);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    this.options.mesh.off('task', this.onTask);
    this.options.mesh.off('private', this.onPrivate);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  request(request: TaskRequest): Promise<TaskRecord> {
    return this.requester.request(request);
  }

  /** This node's offers in the shared state: kind, model and its sha256, price, unit, expected time. */
  async publishOffers(): Promise<void> {
    const { mesh, config, resources } = this.options;
    const sell = this.options.mandate?.mandate.sell.kinds ?? [];
    const offers = config.offers.filter((o) => sell.includes(o.kind)).map((o) => {
      const model = modelFor(o.kind, resources.models);
      return { kind: o.kind, price: o.price, unit: o.unit, eta: o.eta, ...(model ? { model: model.name, version: model.version, sha256: model.sha256 } : {}) };
    });
    const current = mesh.shared.get(CAPABILITIES_MAP, mesh.nodeId);
    const next = { offers };
    if (JSON.stringify(current) !== JSON.stringify(next)) await mesh.setShared(CAPABILITIES_MAP, mesh.nodeId, next);
  }

  private allowDirect(from: string): boolean {
    const now = Date.now();
    const bucket = this.buckets.get(from) ?? { tokens: DIRECT_BURST, at: now };
    bucket.tokens = Math.min(DIRECT_BURST, bucket.tokens + ((now - bucket.at) / 1000) * DIRECT_PER_SECOND);
    bucket.at = now;
    this.buckets.set(from, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private async direct(from: string, line: Buffer): Promise<void> {
    const { counters } = this.options;
    if (!this.running) return;
    if (!this.allowDirect(from)) {
      counters.increment('tasks.dropped_flood');
      return;
    }
    const message = decodeDirect(line);
    if (!message) {
      counters.increment('tasks.malformed');
      return;
    }
    counters.increment(`tasks.received.${message.m}`);
    if (message.m === 'cfp') await this.provider.onCall(from, message);
    else if (message.m === 'propose') await this.requester.onProposal(from, message.proposal);
    else await this.requester.onRefusal(from, message.task, message.reason);
  }

  private async entry(origin: string, type: string, body: unknown): Promise<void> {
    const parsed = parseTaskEntry(type, body);
    if (parsed === undefined) return;
    if (parsed === 'malformed') {
      this.options.counters.increment('tasks.malformed');
      return;
    }
    await this.dispatch(origin, parsed);
  }

  private async dispatch(origin: string, entry: TaskEntry): Promise<void> {
    if (entry.type === 'task-award' || entry.type === 'task-cancel') await this.provider.onEntry(origin, entry);
    else await this.requester.onEntry(origin, entry);
  }

  /** For `apiary status`: tasks by role and phase, counters by kind, and each provider's reputation. */
  status(): Record<string, unknown> {
    const phases: Record<string, number> = {};
    for (const r of this.store.all()) phases[`${r.role}.${r.phase}`] = (phases[`${r.role}.${r.phase}`] ?? 0) + 1;
    const counters = Object.fromEntries(Object.entries(this.options.counters.snapshot()).filter(([k]) => k.startsWith('tasks.')).map(([k, v]) => [k.slice('tasks.'.length), v]));
    const m = this.options.mandate?.mandate;
    return {
      tasks: phases,
      counters,
      mandate: m ? { expires: m.expires, sell: m.sell.kinds, buy: m.buy.kinds, dailyBudget: m.dailyBudget, spentToday: this.ledger.spentToday(Date.now()), heldByTasksUnderWay: this.requester.inFlight(), unit: m.unit } : null,
      payments: this.options.payments() ? 'on' : 'off (tasks run at price 0)',
      pending: this.store.all().filter((r) => r.phase === 'input-required').length,
      reputation: this.ledger.all(),
    };
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.options.counters.increment('tasks.errors');
      this.options.logger.warn({ err: (err as Error).message }, 'task step failed');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}
