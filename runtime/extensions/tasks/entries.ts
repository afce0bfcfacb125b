/**
 * The obligations of the contract net as feed entries, each sealed to the
 * counterparty (mesh appendPrivate): signed by the author's node key, kept
 * in its feed, relayed as ciphertext, so they survive restarts and
 * partitions and neither side can deny them later.
 *
 *   task-award   requester -> winner   {task, attempt, kind, input, deadline, ackBy, proposal}  the winner's own signed proposal; void after ackBy
 *   task-ack     winner -> requester   {task, attempt}          accepted; work starts
 *   task-result  winner -> requester   {task, attempt, output}
 *   task-failure winner -> requester   {task, attempt, reason}
 *   task-cancel  requester -> winner   {task, attempt, reason}  given up on (a missed deadline), or called off
 */
import { z } from 'zod';
import { signedProposalSchema, taskId, taskInputSchema, TASK_KINDS } from './wire.js';

export const TASK_ENTRY_TYPES = ['task-award', 'task-ack', 'task-result', 'task-failure', 'task-cancel'] as const;
export type TaskEntryType = (typeof TASK_ENTRY_TYPES)[number];

const attempt = z.number().int().min(1).max(64);
const reason = z.string().max(200);

export const taskEntrySchemas = {
  'task-award': z.strictObject({ task: taskId, attempt, kind: z.enum(TASK_KINDS), input: taskInputSchema, deadline: z.number().int().min(0), ackBy: z.number().int().min(0), proposal: signedProposalSchema }),
  'task-ack': z.strictObject({ task: taskId, attempt }),
  'task-result': z.strictObject({ task: taskId, attempt, output: z.record(z.string(), z.unknown()) }),
  'task-failure': z.strictObject({ task: taskId, attempt, reason }),
  'task-cancel': z.strictObject({ task: taskId, attempt, reason }),
} as const;

export type TaskEntry = { [K in TaskEntryType]: { type: K; body: z.infer<(typeof taskEntrySchemas)[K]> } }[TaskEntryType];

/** A task entry read from a feed, or undefined if it is none (or malformed: counted by the caller). */
export function parseTaskEntry(type: string, body: unknown): TaskEntry | 'malformed' | undefined {
  if (!(TASK_ENTRY_TYPES as readonly string[]).includes(type)) return undefined;
  const parsed = taskEntrySchemas[type as TaskEntryType].safeParse(body);
  return parsed.success ? ({ type, body: parsed.data } as TaskEntry) : 'malformed';
}
