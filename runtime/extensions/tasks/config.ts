/** The `tasks` section: work between nodes by contract net (runtime/extensions/tasks/), within the owner's mandate. */
import { z } from 'zod';
import { duration } from '../../config/units.js';

const kind = z.enum(['hive-sound', 'reading-at'], { error: 'expected a task kind: "hive-sound" (classify hive-sound features with a model) or "reading-at" (this node\'s reading of a channel at a time)' });

export const tasksSchema = z.strictObject({
  /** Offer and request work over the mesh. Off by default; needs the mesh. */
  enabled: z.boolean().default(false),
  /** The owner-signed mandate file (`apiary owner mandate sign`); without one nothing is sold, and every request waits for the owner. */
  mandate: z.string().min(1).optional(),
  /** What this node offers, published in the shared state (`capabilities`). */
  offers: z.array(z.strictObject({
    kind,
    /** Per task, in `unit`; 0 is free (the only price while payments are off). */
    price: z.number().int().min(0).max(1_000_000_000).default(0),
    unit: z.string().regex(/^[a-z][a-z0-9-]{0,15}$/, { error: 'unit: a short lower-case name like credit' }).default('credit'),
    /** The time this node expects to take. */
    eta: duration(0, 86_400_000).prefault('2s'),
  })).max(8).default([]),
  /** How long a call for proposals collects bids. */
  bidWindow: duration(50, 600_000).prefault('2s'),
  /** How long a winner has to acknowledge an award before the task goes to the next bidder. */
  ackTimeout: duration(50, 600_000).prefault('5s'),
  /** Added to a winner's ETA before its result counts as missed (and the task is re-awarded). */
  grace: duration(0, 600_000).prefault('5s'),
  /** Tasks this node works on at once; further calls are refused as `busy`. */
  maxConcurrent: z.number().int().min(1).max(64).default(2),
  /** Share of inference results re-run locally when this node has the same model (0..1). */
  spotCheck: z.number().min(0).max(1).default(0.2),
  /** A provider whose local reputation falls below this gets no more awards. */
  minReputation: z.number().min(0).max(1).default(0.3),
});

export type TasksConfig = z.output<typeof tasksSchema>;

/** The section as the node holds it (frozen): what the task agent reads. */
export type TaskAgentConfig = Readonly<Omit<TasksConfig, 'offers'>> & { readonly offers: readonly Readonly<TasksConfig['offers'][number]>[] };
