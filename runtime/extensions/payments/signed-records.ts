/**
 * The two signed records of a payment channel, each a standalone proof
 * checked with its signer's node key alone:
 *
 * - a voucher, signed by the payer: "I owe `payee` `cumulative` `unit` in
 *   all, as of my voucher `seq` on this channel" (cumulative, so the payee
 *   keeps only the highest and a lost voucher loses nothing);
 * - a settlement, signed by the payee: "`payer` has settled `total` `unit`
 *   with me in all, `amount` of it in settlement `n`" (the owners settled by
 *   any means; cumulative too).
 *
 * Signed bytes: a domain prefix + the canonical JSON of the record without
 * `sig` (runtime/canonical-json.ts), so a signature made for one kind of
 * record, or for a feed entry, never verifies as another.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../../canonical-json.js';
import { verifySignature, type NodeIdentity } from '../../identity/identity.js';
import { MAX_AMOUNT, NODE_ID_PATTERN, UNIT_PATTERN } from './config.js';

export const VOUCHER_CONTEXT = 'apiary-voucher-v1\n';
export const SETTLEMENT_CONTEXT = 'apiary-settlement-v1\n';
/** The inner types of the private (sealed) feed entries that carry them. */
export const VOUCHER_ENTRY_TYPE = 'payment.voucher';
export const SETTLEMENT_ENTRY_TYPE = 'payment.settlement';
const MAX_TEXT = 200;

const nodeId = z.string().regex(NODE_ID_PATTERN);
const count = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const total = z.number().int().min(0).max(MAX_AMOUNT);
const signature = z.string().regex(/^[A-Za-z0-9_-]{86}$/);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Both records name their channel: one direction (payer to payee) in one unit. */
const channelFields = { v: z.literal(1), payer: nodeId, payee: nodeId, unit: z.string().regex(UNIT_PATTERN) };

const voucherSchema = z.strictObject({
  ...channelFields,
  /** This channel's voucher number, from 1. */
  seq: count,
  /** Everything the payer owes the payee in this unit on this channel, up to this voucher. */
  cumulative: total,
  /** Signing time (payer's clock, ms): informative only. */
  t: time,
  memo: z.strictObject({ task: z.string().min(1).max(MAX_TEXT).optional() }).optional(),
  sig: signature,
}).refine((v) => v.payer !== v.payee, { error: 'a node does not pay itself' });

const settlementSchema = z.strictObject({
  ...channelFields,
  /** This channel's settlement number, from 1. */
  n: count,
  amount: z.number().int().min(1).max(MAX_AMOUNT),
  /** Everything settled on this channel up to this settlement. */
  total: total,
  t: time,
  note: z.string().max(MAX_TEXT).optional(),
  sig: signature,
}).refine((s) => s.payer !== s.payee, { error: 'a node does not settle with itself' }).refine((s) => s.amount <= s.total, { error: 'amount is more than total' });

export type Voucher = z.output<typeof voucherSchema>;
export type Settlement = z.output<typeof settlementSchema>;
export type UnsignedVoucher = Omit<Voucher, 'sig' | 'v'>;
export type UnsignedSettlement = Omit<Settlement, 'sig' | 'v'>;

/** The record without its signature. */
function unsignedOf(record: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== 'sig'));
}

function signingBytes(context: string, record: object): Buffer {
  return Buffer.from(context + canonicalJson(unsignedOf(record)), 'utf8');
}

/** The payer signs a voucher with its node key. */
export function signVoucher(identity: NodeIdentity, fields: UnsignedVoucher): Voucher {
  const unsigned = { v: 1 as const, ...fields };
  return { ...unsigned, sig: identity.sign(signingBytes(VOUCHER_CONTEXT, unsigned)).toString('base64url') };
}

/** The payee signs a settlement with its node key. */
export function signSettlement(identity: NodeIdentity, fields: UnsignedSettlement): Settlement {
  const unsigned = { v: 1 as const, ...fields };
  return { ...unsigned, sig: identity.sign(signingBytes(SETTLEMENT_CONTEXT, unsigned)).toString('base64url') };
}

export type Checked<T> = { ok: true; record: T } | { ok: false; reason: 'malformed' | 'signature' };

/** Parses a voucher from untrusted JSON and checks its signature against `payerKey` (the feed origin's key). */
export function checkVoucher(raw: unknown, payerKey: string): Checked<Voucher> {
  const parsed = voucherSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'malformed' };
  const ok = verifySignature(payerKey, signingBytes(VOUCHER_CONTEXT, parsed.data), Buffer.from(parsed.data.sig, 'base64url'));
  return ok ? { ok: true, record: parsed.data } : { ok: false, reason: 'signature' };
}

/** Parses a settlement from untrusted JSON and checks its signature against `payeeKey`. */
export function checkSettlement(raw: unknown, payeeKey: string): Checked<Settlement> {
  const parsed = settlementSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'malformed' };
  const ok = verifySignature(payeeKey, signingBytes(SETTLEMENT_CONTEXT, parsed.data), Buffer.from(parsed.data.sig, 'base64url'));
  return ok ? { ok: true, record: parsed.data } : { ok: false, reason: 'signature' };
}

/** Same signed content: the one test of "the same voucher" (Ed25519 signatures are deterministic, but compare content). */
export function sameContent(a: Voucher | Settlement, b: Voucher | Settlement): boolean {
  return canonicalJson(unsignedOf(a)) === canonicalJson(unsignedOf(b));
}

/** sha256 of the canonical record, signature included (base64url): names a record in statements and evidence. */
export function recordHash(record: Voucher | Settlement): string {
  return createHash('sha256').update(canonicalJson(record)).digest('base64url');
}
