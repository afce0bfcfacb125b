/**
 * The payment commands, the only way other extensions (tasks, MCP) and the
 * CLI (`apiary pay balance|statement`) use payments. Light on purpose:
 * `apiary commands` declares them without loading the extension.
 */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';
import { amountSchema, MAX_AMOUNT, nodeIdSchema, unitSchema } from './config.js';
import type { BalanceRow, Statement } from './reports.js';
import type { Settlement, Voucher } from './signed-records.js';

export type CreditCheck =
  | { ok: true; outstanding: number; limit: number }
  | { ok: false; reason: 'credit-limit' | 'unknown-payer' | 'forked'; outstanding: number; limit: number };

export interface PaymentParts {
  creditCheck(payer: string, unit: string, amount: number, cap?: number): CreditCheck;
  send(payee: string, unit: string, amount: number, memo: { task?: string } | undefined): Promise<Voucher>;
  balance(peer: string | undefined): BalanceRow[];
  statement(peer: string, unit: string | undefined): Statement;
  settle(peer: string, unit: string, amount: number, note: string | undefined): Promise<Settlement>;
}

const OFF = 'payments are off on this node (payments.enabled, and the mesh: vouchers travel in the feeds)';

export function declarePaymentCommands(registry: CommandRegistry, parts?: PaymentParts): void {
  const unavailable = () => (parts ? undefined : OFF);
  registry.define('pay/credit-check', {
    description: 'whether this node would work on credit for a payer: what the payer owes it (netted), plus `amount`, within its credit limit',
    args: z.strictObject({
      payer: nodeIdSchema.describe('the node that would pay'),
      unit: unitSchema.default('credit').describe('the unit, like credit'),
      amount: amountSchema.describe('the price of the work, in whole units'),
      limit: z.number().int().min(0).max(MAX_AMOUNT).optional().describe('a lower limit to apply, like the owner mandate\'s creditLimitPerPeer'),
    }),
    unavailable,
    handler: ({ payer, unit, amount, limit }) => parts?.creditCheck(payer, unit, amount, limit),
  });
  registry.define('pay/send', {
    description: 'pay a peer: sign the next cumulative voucher to it (higher by `amount`) and send it sealed in this node\'s feed',
    args: z.strictObject({
      payee: nodeIdSchema.describe('the node paid'),
      unit: unitSchema.default('credit').describe('the unit, like credit'),
      amount: amountSchema.describe('whole units to add to what this node owes the payee'),
      memo: z.strictObject({ task: z.string().min(1).max(200).optional().describe('the task paid for') }).optional(),
    }),
    write: true,
    unavailable,
    handler: ({ payee, unit, amount, memo }) => parts?.send(payee, unit, amount, memo),
  });
  registry.define('pay/balance', {
    description: 'per peer and unit: what this node owes, what it is owed, the two netted, what was settled, and the credit limit',
    args: z.strictObject({ peer: nodeIdSchema.optional().describe('only this peer') }),
    unavailable,
    handler: ({ peer }) => parts?.balance(peer),
  });
  registry.define('pay/statement', {
    description: 'the payment history with one peer both ways (vouchers, settlements) and its digest: the same on both nodes once they hold the same entries',
    args: z.strictObject({
      peer: nodeIdSchema.describe('the other node'),
      unit: unitSchema.optional().describe('only this unit'),
    }),
    unavailable,
    handler: ({ peer, unit }) => parts?.statement(peer, unit),
  });
  registry.define('pay/settle', {
    description: 'record, as payee, that a payer settled `amount` by any means (cash, transfer): a signed entry that lowers what it owes',
    args: z.strictObject({
      peer: nodeIdSchema.describe('the payer that settled'),
      unit: unitSchema.default('credit').describe('the unit, like credit'),
      amount: amountSchema.describe('whole units settled, at most what it owes'),
      note: z.string().max(200).optional().describe('how it was settled, a reference'),
    }),
    write: true,
    unavailable,
    handler: ({ peer, unit, amount, note }) => parts?.settle(peer, unit, amount, note),
  });
}
