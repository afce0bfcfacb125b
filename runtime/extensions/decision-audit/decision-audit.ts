/**
 * Verifiable decisions. A decision taken on a model output carries its
 * evidence: the model's sha256, the exact input features, the hash of the
 * normalised input and the output. The record goes into the node's signed
 * feed, so anyone holding the same model can audit it: recompute the input
 * hash from the features, re-run the model, and check that the rule's value
 * is the output it names. A node cannot then claim an alert that its own
 * model would not have raised without the audit saying so.
 */
import { z } from 'zod';
import { isApiaryError } from '../../errors.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import type { VerifiedModel } from '../../../models/registry/model-runner.js';

export const DECISION_ENTRY_TYPE = 'decision';
/** Two backends (or two boards) agree to float32 rounding; a lie about an output is far larger. */
export const AUDIT_TOLERANCE = 1e-5;

export type { DecisionRecord, ModelEvidence } from '../../core/model-types.js';

export type AuditVerdict = 'verified' | 'no-inference' | 'model-unavailable' | 'input-hash-mismatch' | 'output-mismatch' | 'value-mismatch' | 'malformed';

export interface AuditResult {
  readonly origin: string;
  readonly seq: number;
  readonly rule: string | undefined;
  readonly state: string | undefined;
  readonly t: number | undefined;
  readonly model: string | undefined;
  readonly sha256: string | undefined;
  readonly verdict: AuditVerdict;
  /** Why, in words. */
  readonly detail: string;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const finite = z.number().refine(Number.isFinite, 'not a finite number');
const evidenceSchema = z.strictObject({
  model: z.string().min(1).max(64),
  version: z.string().max(32),
  sha256: hex64,
  inputHash: hex64,
  features: z.record(z.string().max(64), finite),
  probabilities: z.record(z.string().max(64), finite),
  t: finite,
});
/** Only what the audit reads is checked strictly; other decision fields are for people. */
const decisionSchema = z.looseObject({
  rule: z.string().max(64),
  state: z.string().max(16),
  input: z.string().max(160),
  value: finite,
  t: finite,
  evidence: evidenceSchema.optional(),
});

/** Looks up a model this node can run by the sha256 of its file and its version (the manifest normalises its input). */
export type ModelLookup = (sha256: string, version: string) => Promise<VerifiedModel | undefined>;

/**
 * Audits one decision entry body from any origin. Untrusted input: every
 * field is checked before use, and nothing here throws for bad data.
 */
export async function auditDecision(entry: { origin: string; seq: number; body: unknown }, lookup: ModelLookup): Promise<AuditResult> {
  const base = { origin: entry.origin, seq: entry.seq };
  const parsed = decisionSchema.safeParse(entry.body);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    return { ...base, rule: undefined, state: undefined, t: undefined, model: undefined, sha256: undefined, verdict: 'malformed', detail: `not a decision record: ${why}` };
  }
  const decision = parsed.data;
  const evidence = decision.evidence;
  const result = (verdict: AuditVerdict, detail: string): AuditResult => ({
    ...base, rule: decision.rule, state: decision.state, t: decision.t, model: evidence?.model, sha256: evidence?.sha256, verdict, detail,
  });
  if (!evidence) {
    return decision.input.startsWith('model.')
      ? result('malformed', `the decision watches ${decision.input} but carries no evidence of the inference`)
      : result('no-inference', `taken on ${decision.input} = ${decision.value}, not on a model output`);
  }
  const [kind, model, label] = decision.input.split('.');
  if (kind !== 'model' || model !== evidence.model || label === undefined) {
    return result('malformed', `the evidence is from model ${evidence.model}, but the decision watches ${decision.input}`);
  }
  const verified = await lookup(evidence.sha256, evidence.version);
  if (!verified) return result('model-unavailable', `this node has no ${evidence.model} ${evidence.version} with sha256 ${evidence.sha256.slice(0, 12)}…: install it to audit this decision`);

  let prediction;
  try {
    prediction = await verified.predict(evidence.features);
  } catch (err) {
    if (!isApiaryError(err)) throw err;
    return result('malformed', `the model cannot run on the recorded features: ${err.message}`);
  }
  if (prediction.inputHash !== evidence.inputHash) {
    return result('input-hash-mismatch', `the recorded features hash to ${prediction.inputHash.slice(0, 12)}…, the entry claims ${evidence.inputHash.slice(0, 12)}…`);
  }
  for (const [name, p] of Object.entries(prediction.probabilities)) {
    const claimed = evidence.probabilities[name];
    if (claimed === undefined || Math.abs(claimed - p) > AUDIT_TOLERANCE) {
      return result('output-mismatch', `the model gives ${name} = ${p}, the entry claims ${claimed ?? 'nothing'}`);
    }
  }
  const claimedValue = evidence.probabilities[label];
  if (claimedValue === undefined || Math.abs(decision.value - claimedValue) > AUDIT_TOLERANCE) {
    return result('value-mismatch', `the rule saw ${decision.input} = ${decision.value}, but the model output ${label} = ${claimedValue ?? 'nothing'}`);
  }
  return result('verified', `${evidence.model} ${evidence.version} re-run on the recorded features gives the recorded output (±${AUDIT_TOLERANCE}); ${label} = ${claimedValue.toFixed(4)}`);
}

/** What the audit reads a feed through: the mesh's store, and the right to open entries sealed to this node. */
export interface AuditableFeed {
  have(): Record<string, number>;
  read(origin: string, fromSeq: number): AsyncIterable<FeedEntry>;
  readEntry(entry: FeedEntry): { type: string; body: unknown } | undefined;
}

export interface AuditOptions {
  /** One origin's feed; omitted = every feed this node holds. */
  readonly origin?: string | undefined;
  /** The newest this many decisions, over all feeds read. */
  readonly limit: number;
  /** Entries read back from the head of each feed: bounds the work on a long feed. */
  readonly scan: number;
}

/** Audits the newest decisions in the feeds this node holds, oldest first. */
export async function auditFeeds(feed: AuditableFeed, lookup: ModelLookup, options: AuditOptions): Promise<AuditResult[]> {
  const heads = feed.have();
  const origins = options.origin === undefined ? Object.keys(heads) : [options.origin];
  const found: { origin: string; seq: number; t: number; body: unknown }[] = [];
  for (const origin of origins) {
    const head = heads[origin] ?? 0;
    for await (const entry of feed.read(origin, Math.max(1, head - options.scan + 1))) {
      const read = feed.readEntry(entry);
      if (read?.type === DECISION_ENTRY_TYPE) found.push({ origin, seq: entry.seq, t: entry.hlc.l, body: read.body });
    }
  }
  found.sort((a, b) => a.t - b.t || a.origin.localeCompare(b.origin) || a.seq - b.seq);
  const results: AuditResult[] = [];
  for (const entry of found.slice(-options.limit)) results.push(await auditDecision(entry, lookup));
  return results;
}
