/**
 * Tasks on disk: one small JSON file per task under <dataDir>/tasks/, written
 * temp -> fsync -> rename before the node acts on a new state, so a node
 * killed at any point restarts from the last state it acted on. Phases reuse
 * A2A's task state names where they fit (submitted, working, input-required,
 * completed, failed, canceled, rejected); `bidding` and `awarded` are the
 * contract-net steps A2A does not have.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../storage/atomic-json-file.js';
import type { RefusalReason, SignedProposal, TaskInput, TaskKind } from './wire.js';

export const TASK_PHASES = ['input-required', 'bidding', 'awarded', 'working', 'completed', 'failed', 'canceled', 'rejected'] as const;
export type TaskPhase = (typeof TASK_PHASES)[number];

export interface TaskRecord {
  id: string;
  /** `requester`: this node asked; `provider`: this node does the work. */
  role: 'requester' | 'provider';
  kind: TaskKind;
  input: TaskInput;
  phase: TaskPhase;
  /** The node on the other side: the requester (provider role), or the current winner (requester role). */
  peer?: string;
  maxPrice: number;
  unit: string;
  /** When the result is due (ms since the epoch). */
  deadline: number;
  /** Awards made so far: a re-award after a missed deadline is attempt 2. */
  attempt: number;
  proposals: SignedProposal[];
  refusals: { bidder: string; reason: RefusalReason }[];
  /** Bidders already awarded and given up on (they get a cancellation). */
  passedOver: string[];
  /** Why each of them was given up on (a failure it reported, a missed deadline): at most one per award. */
  givenUp?: { bidder: string; why: string }[];
  award?: SignedProposal;
  /** When bids close (requester role, bidding). */
  bidBy?: number;
  /** When the current award must be acknowledged by, and its result be in. */
  ackBy?: number;
  resultBy?: number;
  result?: unknown;
  failure?: string;
  /** Said to the operator: the price was held at 0 because payments are off. */
  note?: string;
  /** Why it waits for the owner (input-required). */
  pending?: string;
  /** The spot-check's verdict on a result (requester role). */
  check?: { verdict: 'passed' | 'failed' | 'skipped'; detail: string };
  paid?: { amount: number; voucher?: unknown; error?: string };
  created: number;
  updated: number;
}

export class TaskStore {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'tasks');
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const record = JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as TaskRecord;
        this.tasks.set(record.id, record);
      } catch {
        // a half-written temp never has the .json name; anything else unreadable is skipped, not fatal
      }
    }
  }

  get(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  all(): TaskRecord[] {
    return [...this.tasks.values()].sort((a, b) => a.created - b.created);
  }

  /** Durable before it returns: the caller acts on the new state only after. */
  async save(record: TaskRecord): Promise<void> {
    record.updated = Date.now();
    this.tasks.set(record.id, record);
    await writeFileAtomic(path.join(this.dir, `${record.role === 'provider' ? 'p' : 'r'}-${record.id}.json`), JSON.stringify(record));
  }
}
