/**
 * The work itself, on the provider, and the spot-check of an inference on
 * the requester. `hive-sound` runs the provider's loaded hive-sound model on
 * features the requester computed (raw audio never leaves the hive's own
 * node); `reading-at` answers with the provider's own stored reading of a
 * channel at or before a time (its weather station, its own sensor).
 */
import type { ModelHost } from '../../core/model-host.js';
import type { TaskInput, TaskKind } from './wire.js';

export const SOUND_MODEL = 'hive-sound';
/** A spot-check passes when every probability is this close to the provider's. */
const CHECK_TOLERANCE = 1e-4;

export interface StoredReading {
  value: number;
  unit: string;
  t: number;
}

export interface WorkResources {
  models: ModelHost | undefined;
  /** The node's stored reading of `channel` at or before `t` (within the look-back), if any. */
  readingAt(channel: string, t: number): Promise<StoredReading | undefined>;
}

/** The model a bid for `kind` is made with (undefined: none needed, or none loaded). */
export function modelFor(kind: TaskKind, models: ModelHost | undefined): { name: string; version: string; sha256: string } | undefined {
  if (kind !== 'hive-sound') return undefined;
  const model = models?.loaded(SOUND_MODEL);
  return model && { name: model.manifest.name, version: model.manifest.version, sha256: model.sha256 };
}

/** Does the work; throws with the reason when it cannot. */
export async function runTask(kind: TaskKind, input: TaskInput, resources: WorkResources, now: number): Promise<Record<string, unknown>> {
  if (kind === 'hive-sound') {
    if (!('features' in input)) throw new Error('hive-sound needs features');
    const output = await resources.models?.run(SOUND_MODEL, input.features, now);
    if (!output) throw new Error('no hive-sound model loaded');
    return { model: output.model, version: output.version, sha256: output.sha256, label: output.label, probabilities: output.probabilities, inputHash: output.inputHash };
  }
  if (!('channel' in input)) throw new Error('reading-at needs a channel and a time');
  const reading = await resources.readingAt(input.channel, input.t);
  if (!reading) throw new Error(`no reading of ${input.channel} at or before ${new Date(input.t).toISOString()}`);
  return { channel: input.channel, value: reading.value, unit: reading.unit, t: reading.t };
}

/**
 * Re-runs an inference result with the same model (by sha256 and version,
 * as decision audits find it: loaded, shipped, installed or previous). A
 * result that is not an inference, or whose model this node lacks, is skipped.
 */
export async function spotCheck(kind: TaskKind, input: TaskInput, output: Record<string, unknown>, models: ModelHost | undefined): Promise<{ verdict: 'passed' | 'failed' | 'skipped'; detail: string }> {
  if (kind !== 'hive-sound' || !('features' in input)) return { verdict: 'skipped', detail: 'not an inference' };
  const { sha256, version, label, probabilities } = output;
  if (typeof sha256 !== 'string' || typeof version !== 'string') return { verdict: 'failed', detail: 'the result names no model' };
  const model = await models?.modelFor(sha256, version);
  if (!model) return { verdict: 'skipped', detail: `this node lacks model ${sha256.slice(0, 12)} v${version}` };
  const mine = await model.predict(input.features);
  const theirs = (probabilities ?? {}) as Record<string, unknown>;
  if (mine.label !== label) return { verdict: 'failed', detail: `label ${String(label)}, re-run gives ${mine.label}` };
  for (const [name, p] of Object.entries(mine.probabilities)) {
    const q = theirs[name];
    if (typeof q !== 'number' || Math.abs(q - p) > CHECK_TOLERANCE) return { verdict: 'failed', detail: `probability of ${name} ${String(q)}, re-run gives ${p}` };
  }
  return { verdict: 'passed', detail: `same label (${mine.label}) and probabilities` };
}
