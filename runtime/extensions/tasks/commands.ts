/**
 * The operator's view of tasks between nodes: request one, list and show
 * them, and the owner's answer to requests outside the mandate
 * (`apiary tasks pending|approve|reject`). Light on purpose: `apiary
 * commands` declares them without loading the extension.
 */
import { z } from 'zod';
import { commandRefused, type CommandRegistry } from '../../commands/command-registry.js';
import { duration } from '../../config/units.js';
import type { TaskRecord } from './task-store.js';
import { taskInputSchema, TASK_KINDS } from './wire.js';

export interface TaskRequestArgs {
  kind: (typeof TASK_KINDS)[number];
  input: z.infer<typeof taskInputSchema>;
  maxPrice: number;
  deadline: number;
}

export interface TasksParts {
  request(args: TaskRequestArgs): Promise<TaskRecord>;
  list(limit: number): TaskRecord[];
  show(id: string): TaskRecord | undefined;
  pending(): TaskRecord[];
  approve(id: string): Promise<TaskRecord>;
  reject(id: string): Promise<TaskRecord>;
}

const OFF = 'tasks between nodes are off on this node (tasks.enabled, and the mesh must be on)';
const id = z.string({ error: 'id: the task id (see `apiary tasks list`)' }).regex(/^[a-z0-9-]{8,64}$/, { error: 'id: the task id (see `apiary tasks list`)' }).describe('the task id');

/** A record as shown: the input's features summarised (they are many numbers). */
function summary(r: TaskRecord): Record<string, unknown> {
  return {
    id: r.id, role: r.role, kind: r.kind, phase: r.phase, peer: r.peer, price: r.award?.price, maxPrice: r.maxPrice, unit: r.unit,
    attempt: r.attempt, bids: r.proposals.length, refusals: r.refusals.length, deadline: new Date(r.deadline).toISOString(),
    ...(r.pending ? { pending: r.pending } : {}), ...(r.note ? { note: r.note } : {}), ...(r.failure ? { failure: r.failure } : {}), ...(r.check ? { check: r.check.verdict } : {}),
  };
}

export function declareTasksCommands(registry: CommandRegistry, parts?: TasksParts): void {
  const unavailable = () => (parts ? undefined : OFF);
  registry.define('tasks/request', {
    description: "ask linked peers to do a task (contract net): they bid, the cheapest on-time bid is awarded; outside the owner's mandate it waits for approval",
    write: true,
    args: z.strictObject({
      kind: z.enum(TASK_KINDS, { error: 'kind: "hive-sound" (classify hive-sound features) or "reading-at" (a peer\'s reading of a channel at a time)' }).describe('the task kind'),
      input: taskInputSchema.describe('hive-sound: {features: {name: number}}; reading-at: {channel, t (ms since the epoch)}'),
      maxPrice: z.number({ error: 'maxPrice: a whole number of credits, 0 for free work' }).int().min(0).max(1_000_000_000).default(0).describe('most this task may cost'),
      deadline: duration(1_000, 86_400_000).prefault('30s').describe('when the result is due, from now, like "30s"'),
    }),
    unavailable,
    handler: async (args) => parts && summary(await parts.request(args)),
  });
  registry.define('tasks/list', {
    description: 'the tasks this node requested or works on, newest first: kind, phase, peer, price',
    args: z.strictObject({ limit: z.number().int().min(1).max(500).default(50).describe('at most this many') }),
    unavailable,
    handler: ({ limit }) => parts?.list(limit).map(summary),
  });
  registry.define('tasks/show', {
    description: 'one task in full: input, bids, refusals, award, result, spot-check, payment',
    args: z.strictObject({ id }),
    unavailable,
    handler: ({ id: taskId }) => {
      const record = parts?.show(taskId);
      if (parts && !record) throw commandRefused(`id: no task ${taskId} on this node (see \`apiary tasks list\`)`);
      return record;
    },
  });
  registry.define('tasks/pending', {
    description: "task requests outside the owner's mandate, waiting for `apiary tasks approve` or `reject`",
    args: z.object({}),
    unavailable,
    handler: () => parts?.pending().map(summary),
  });
  registry.define('tasks/approve', {
    description: 'send a pending task request out as asked, this once (the owner decides beyond the mandate)',
    write: true,
    args: z.strictObject({ id }),
    unavailable,
    handler: async ({ id: taskId }) => parts && summary(await parts.approve(taskId)),
  });
  registry.define('tasks/reject', {
    description: 'drop a pending task request',
    write: true,
    args: z.strictObject({ id }),
    unavailable,
    handler: async ({ id: taskId }) => parts && summary(await parts.reject(taskId)),
  });
}
