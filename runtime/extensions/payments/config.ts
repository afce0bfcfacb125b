/** The `payments` section: offline micro-payments between nodes (cumulative signed vouchers, credit limits per peer). */
import { z } from 'zod';

/** Largest amount and cumulative total: far inside Number.MAX_SAFE_INTEGER, so sums of many channels stay exact. */
export const MAX_AMOUNT = 1_000_000_000_000;
export const UNIT_PATTERN = /^[a-z][a-z0-9-]{0,15}$/;
export const NODE_ID_PATTERN = /^[a-z2-7]{12}$/;

const UNIT_ERROR = 'expected a unit name: a lower-case word of at most 16 characters, like "credit"';
export const unitSchema = z.string({ error: UNIT_ERROR }).regex(UNIT_PATTERN, { error: UNIT_ERROR });
export const nodeIdSchema = z.string().regex(NODE_ID_PATTERN, { error: 'expected a 12-character node id (see `apiary id` on that node, or `apiary status`)' });
/** A whole, positive amount of a unit. */
export const amountSchema = z.number({ error: 'expected a whole number of units, like 3' })
  .int({ error: 'expected a whole number of units: amounts are integers (no fractions)' })
  .min(1, { error: 'expected at least 1' })
  .max(MAX_AMOUNT, { error: `expected at most ${MAX_AMOUNT}` });
const limitSchema = z.number({ error: 'expected a whole number of units' }).int({ error: 'expected a whole number of units' }).min(0).max(MAX_AMOUNT);

export const paymentsSchema = z.strictObject({
  /** Issue and accept vouchers (the `pay/*` commands). Off by default; needs the mesh (vouchers travel as sealed feed entries). */
  enabled: z.boolean().default(false),
  /** What any peer may owe this node, per unit, before it refuses more work from it (its worst case: one limit per payer). */
  creditLimit: limitSchema.default(100),
  /** Node id -> its own credit limit (0: never work on credit for it). */
  perPeer: z.record(nodeIdSchema, limitSchema).default({}),
  /** The units this node pays and accepts. */
  units: z.array(unitSchema).min(1).max(16).default(['credit']),
});

export type PaymentsConfig = z.output<typeof paymentsSchema>;

/** The credit limit this node gives `peer`. */
export function creditLimitOf(config: { readonly creditLimit: number; readonly perPeer: Readonly<Record<string, number>> }, peer: string): number {
  return Object.hasOwn(config.perPeer, peer) ? (config.perPeer[peer] as number) : config.creditLimit;
}
