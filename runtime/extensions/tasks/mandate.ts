/**
 * Owner mandates (the AP2 idea): the owner signs the bounds within which a
 * node may sell and buy work on its behalf. The node carries the signed file
 * (`tasks.mandate`); it bids, accepts and pays only inside it, and anything
 * outside waits for the owner (`apiary tasks pending|approve|reject`). The
 * mandate travels with each call for proposals, so a bidder checks the
 * payer's bounds with the owner key it already trusts. A stateless verifier
 * cannot track a cumulative budget across payees: the daily budget is kept
 * by the node itself (ledger.ts); peers bound their own risk by credit limits.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { canonicalJson } from '../../canonical-json.js';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { verifySignature, type NodeIdentity } from '../../identity/identity.js';

const MANDATE_DOMAIN = 'apiary-owner-mandate-v1\n';
const kinds = z.array(z.enum(['hive-sound', 'reading-at'], { error: 'expected a task kind: "hive-sound" or "reading-at"' })).max(8);
const amount = z.number().int().min(0).max(1_000_000_000);
const ownerKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'expected an owner public key (43 base64url characters, from `apiary owner show`)' });

export const mandateBodySchema = z.strictObject({
  v: z.literal(1),
  /** The node this mandate is for (its id from `apiary id`). */
  node: z.string().regex(/^[a-z2-7]{12}$/, { error: 'node: the node id this mandate is for (12 characters, from `apiary id`)' }),
  /** What the node may sell, and at no less than this price per task. */
  sell: z.strictObject({ kinds, minPrice: amount.default(0) }),
  /** What the node may buy, and at no more than this price per task. */
  buy: z.strictObject({ kinds, maxPrice: amount.default(0) }),
  unit: z.string().regex(/^[a-z][a-z0-9-]{0,15}$/).default('credit'),
  /** Most the node may commit to pay in one UTC day. */
  dailyBudget: amount.default(0),
  /** Most any one peer may owe this node (work past it is refused: `credit-limit`); absent: the node's payments.creditLimit alone. The lower of the two applies. */
  creditLimitPerPeer: amount.optional(),
  /** Owner keys whose nodes it may deal with; empty: any owner this node trusts. */
  peerOwners: z.array(ownerKey).max(64).default([]),
  /** Data rules: raw audio never leaves (only features do); the channels whose readings it may sell. */
  data: z.strictObject({ rawAudio: z.literal(false).default(false), sellChannels: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/)).max(64).default([]) }).prefault({}),
  /** ISO time after which the mandate is void. */
  expires: z.iso.datetime({ error: 'expires: an ISO time like 2027-01-01T00:00:00Z' }),
});
export type MandateBody = z.infer<typeof mandateBodySchema>;

export const signedMandateSchema = z.strictObject({ mandate: mandateBodySchema, owner: ownerKey, sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });
export type SignedMandate = z.infer<typeof signedMandateSchema>;

function mandateBytes(body: MandateBody): Buffer {
  return Buffer.from(MANDATE_DOMAIN + canonicalJson(body), 'utf8');
}

export function signMandate(owner: NodeIdentity, body: MandateBody): SignedMandate {
  return { mandate: body, owner: owner.publicKey, sig: owner.sign(mandateBytes(body)).toString('base64url') };
}

/** Why `signed` does not hold for `node` of `owner` at `now`, or undefined when it does. */
export function mandateFault(signed: SignedMandate, node: string, owner: string | undefined, now: number): string | undefined {
  if (owner === undefined || signed.owner !== owner) return 'not signed by the owner of the node';
  if (!verifySignature(signed.owner, mandateBytes(signed.mandate), Buffer.from(signed.sig, 'base64url'))) return 'bad signature';
  if (signed.mandate.node !== node) return `made for node ${signed.mandate.node}`;
  if (Date.parse(signed.mandate.expires) <= now) return `expired at ${signed.mandate.expires}`;
  return undefined;
}

/** Reads and checks the node's own mandate file; a bad one is a start error naming the file and the fix. */
export async function loadMandate(file: string, node: string, owner: string, now: number): Promise<SignedMandate> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tasks.mandate: cannot read ${file} (${(err as Error).message})`, { hint: 'sign one with `apiary owner mandate sign --file mandate.json`' });
  }
  const parsed = signedMandateSchema.safeParse(raw);
  if (!parsed.success) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tasks.mandate: ${file} is not a signed mandate: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { hint: 'sign one with `apiary owner mandate sign --file mandate.json`' });
  const fault = mandateFault(parsed.data, node, owner, now);
  if (fault) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tasks.mandate: ${file}: ${fault}`, { hint: 'have the owner sign a new one for this node with `apiary owner mandate sign`' });
  return parsed.data;
}
