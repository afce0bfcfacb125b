/**
 * The contract-net messages (FIPA SC00029H) and their signatures. Offers may
 * be lost, so the call for proposals, the proposals and the refusals go as
 * direct mesh messages (mesh-protocol `task`); the obligations (award,
 * acknowledgement, result, failure, cancellation) are feed entries sealed to
 * the counterparty (entries.ts). A proposal is signed by the bidder's node
 * key over a domain-prefixed canonical JSON, so it can travel inside an award
 * and the bidder can tell it is the one it made.
 */
import { z } from 'zod';
import { canonicalJson } from '../../canonical-json.js';
import { verifySignature, type NodeIdentity } from '../../identity/identity.js';
import { signedMandateSchema } from './mandate.js';

/** The task kinds this runtime knows: a model inference on features, and a look-up of the provider's own readings. */
export const TASK_KINDS = ['hive-sound', 'reading-at'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
/** Why a bidder says no (refusals are counted per reason: `tasks.refused.<reason>`). */
export const REFUSAL_REASONS = ['busy', 'policy', 'no-model', 'untrusted', 'price', 'budget', 'credit-limit'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const PROPOSAL_DOMAIN = 'apiary-task-proposal-v1\n';
const nodeId = z.string().regex(/^[a-z2-7]{12}$/);
export const taskId = z.string().regex(/^[a-z0-9-]{8,64}$/);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const amount = z.number().int().min(0).max(1_000_000_000);
const unitName = z.string().regex(/^[a-z][a-z0-9-]{0,15}$/);

/**
 * A task's input: features (numbers, at most 64) for `hive-sound` — raw
 * audio cannot fit, so it never leaves for a node of another owner — or a
 * channel and a time for `reading-at`.
 */
export const taskInputSchema = z.union([
  z.strictObject({ features: z.record(z.string().regex(/^[a-z0-9_]{1,48}$/), z.number().finite()).refine((f) => Object.keys(f).length <= 64, 'at most 64 features') }),
  z.strictObject({ channel: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), t: time }),
]);
export type TaskInput = z.infer<typeof taskInputSchema>;

export const proposalBodySchema = z.strictObject({
  task: taskId,
  requester: nodeId,
  bidder: nodeId,
  kind: z.enum(TASK_KINDS),
  price: amount,
  unit: unitName,
  /** Milliseconds from the award to the result, as the bidder expects. */
  eta: z.number().int().min(0).max(86_400_000),
  /** The bidder is held to it if awarded before this time. */
  validUntil: time,
  /** The model the bidder runs the task with (inference kinds). */
  model: z.strictObject({ name: z.string().max(64), version: z.string().max(32), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});
export const signedProposalSchema = proposalBodySchema.extend({ sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });
export type ProposalBody = z.infer<typeof proposalBodySchema>;
export type SignedProposal = z.infer<typeof signedProposalSchema>;

export const directMessageSchema = z.discriminatedUnion('m', [
  z.strictObject({
    m: z.literal('cfp'), task: taskId, kind: z.enum(TASK_KINDS), input: taskInputSchema,
    maxPrice: amount, unit: unitName, bidBy: time, deadline: time,
    /** The requester's owner mandate: bidders check it with the owner key they trust. */
    mandate: signedMandateSchema.optional(),
  }),
  z.strictObject({ m: z.literal('propose'), proposal: signedProposalSchema }),
  z.strictObject({ m: z.literal('refuse'), task: taskId, reason: z.enum(REFUSAL_REASONS) }),
]);
export type DirectMessage = z.infer<typeof directMessageSchema>;
export type CallForProposals = Extract<DirectMessage, { m: 'cfp' }>;

function proposalBytes(body: ProposalBody): Buffer {
  const { task, requester, bidder, kind, price, unit, eta, validUntil, model } = body;
  return Buffer.from(PROPOSAL_DOMAIN + canonicalJson({ task, requester, bidder, kind, price, unit, eta, validUntil, model }), 'utf8');
}

export function signProposal(node: NodeIdentity, body: ProposalBody): SignedProposal {
  return { ...body, sig: node.sign(proposalBytes(body)).toString('base64url') };
}

/** True if `proposal` is exactly what the holder of `publicKey` signed. */
export function proposalSignedBy(proposal: SignedProposal, publicKey: string): boolean {
  return verifySignature(publicKey, proposalBytes(proposal), Buffer.from(proposal.sig, 'base64url'));
}

export function encodeDirect(message: DirectMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** A peer's message, or undefined when it is not one (counted by the caller). */
export function decodeDirect(line: Buffer): DirectMessage | undefined {
  try {
    const parsed = directMessageSchema.safeParse(JSON.parse(line.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
