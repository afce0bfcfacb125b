/**
 * What a model run and a decision look like on the node's events, in its
 * streams and in its feed. Kept in the kernel: the recorder, the rules, the
 * audit and every application speak them.
 */
import type { Decision } from '../decide/rule-engine.js';

export interface ModelOutput {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
  readonly label: string;
  readonly probabilities: Record<string, number>;
  /** sha256 of the exact normalised input: ties the output to what the model saw. */
  readonly inputHash: string;
  /** Unrounded, so an auditor can recompute inputHash from them (see extensions/decision-audit). */
  readonly features: Record<string, number>;
  readonly t: number;
}

/** The inference behind a decision, exactly as the model saw it. */
export interface ModelEvidence {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
  /** sha256 hex of the normalised input as little-endian float32 (see model-runner.ts). */
  readonly inputHash: string;
  /** The features before normalisation, unrounded: JSON keeps a double exactly. */
  readonly features: Record<string, number>;
  readonly probabilities: Record<string, number>;
  /** Node time of the inference, ms. */
  readonly t: number;
}

export interface DecisionRecord extends Decision {
  readonly time: string;
  readonly evidence?: ModelEvidence;
}
