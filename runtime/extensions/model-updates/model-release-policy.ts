/**
 * Which model releases a node accepts, beyond a valid signature by a signer
 * in models.trust (finding 10: trusting an owner's data must not let it
 * replace my models):
 *
 * - Signer pinned per model: the first signer that installed a model name
 *   (recorded in <dataDir>/model-signers.json) is the only one accepted for it
 *   later; models.trust.signers in the config overrides that record, and this
 *   node's own owner is always accepted.
 * - Fits the node: the release reads only features the running version reads
 *   (the node computes a fixed set) and still has every label a decision rule watches.
 * - Versions: only newer ones, and at most one major version ahead, so a
 *   release numbered 999.0.0 cannot lock out every later genuine update; this
 *   node's own owner may also replace another signer's version with any
 *   version (a reset).
 */
import path from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import type { ModelTrust } from '../../../models/registry/manifest-signature.js';
import type { ModelManifest } from '../../../models/registry/manifest.js';
import type { VerifiedModel } from '../../../models/registry/model-runner.js';
import type { ApiaryConfig } from '../../config/schema.js';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { AtomicJsonFile } from '../../storage/atomic-json-file.js';

/** How many major versions one release may jump (any signer, this node's owner too). */
export const MAX_MAJOR_STEP = 1;

const pinsSchema = z.strictObject({ version: z.literal(1), signers: z.record(z.string(), z.string()) });

export interface ReleaseCandidate {
  readonly manifest: ModelManifest;
  /** The owner key that signed the manifest. */
  readonly signer: string;
}

export type PolicyVerdict = { readonly install: true } | { readonly install: false; readonly skip: string };

export interface ModelReleasePolicyOptions {
  /** Where the first signer of each model is recorded. */
  readonly file: string;
  readonly trust: ModelTrust;
  /** Labels each model's outputs must keep: what the node's decision rules watch (model.<name>.<label>). */
  readonly ruleLabels: Readonly<Record<string, readonly string[]>>;
}

export class ModelReleasePolicy {
  private recorded: Record<string, string> | undefined;

  constructor(private readonly options: ModelReleasePolicyOptions) {}

  /** Labels per model that the decision rules in `inputs` (rule.input strings) watch. */
  static ruleLabels(inputs: readonly string[]): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const input of inputs) {
      const [kind, model, label] = input.split('.');
      if (kind === 'model' && model !== undefined && label !== undefined) (out[model] ??= []).push(label);
    }
    return out;
  }

  /** The signer a model is pinned to (config first, then the first that installed it), if any. */
  async pinnedSigner(name: string): Promise<string | undefined> {
    return this.options.trust.signers?.get(name) ?? (await this.load())[name];
  }

  /** Refuses a signer other than the pinned one (this node's own owner always passes). */
  async checkSigner(name: string, signer: string, source: string): Promise<void> {
    if (signer === this.options.trust.own) return;
    const pinned = await this.pinnedSigner(name);
    if (pinned === undefined || pinned === signer) return;
    throw new ApiaryError(ErrorCodes.MODEL_SIGNER_UNTRUSTED, `${source}: model ${name} is pinned to signer ${pinned}, but this one is signed by ${signer}`, {
      hint: `if ${name} really changed hands, say so in the config: models: { trust: { signers: { ${name}: ${signer} } } }`,
    });
  }

  /**
   * Whether to install a release over `current`: throws (refused, counted
   * by the caller) when it does not fit, says "skip" when it is not newer.
   */
  async check(release: ReleaseCandidate, current: VerifiedModel | undefined, source: string): Promise<PolicyVerdict> {
    const { manifest, signer } = release;
    await this.checkSigner(manifest.name, signer, source);
    this.checkFits(manifest, current, source);
    if (!current) return { install: true };
    const { own } = this.options.trust;
    const next = manifest.version;
    const running = current.manifest.version;
    if (!semver.gt(next, running)) {
      // The owner's reset: over a version another signer published, this node's owner may put any version.
      if (signer === own && current.signer !== own && current.signer !== 'shipped') return { install: true };
      return { install: false, skip: `version ${next} is not newer than the running ${running} (no downgrades over the mesh)` };
    }
    if (semver.major(next) > semver.major(running) + MAX_MAJOR_STEP) {
      throw new ApiaryError(ErrorCodes.MODEL_UPDATE_INVALID, `${source}: version ${next} jumps more than ${MAX_MAJOR_STEP} major version past the running ${running}`, {
        hint: 'publish the next version in sequence; a version number that jumps ahead would lock out every later update',
      });
    }
    return { install: true };
  }

  /** Records the signer of an installed model if none is recorded for it yet. */
  async recordInstalled(name: string, signer: string): Promise<void> {
    const recorded = await this.load();
    if (recorded[name] !== undefined) return;
    this.recorded = { ...recorded, [name]: signer };
    await new AtomicJsonFile<z.infer<typeof pinsSchema>>(this.options.file).write({ version: 1, signers: this.recorded });
  }

  /** Features the node does not compute for this model, and labels the rules watch that it lacks, refuse it. */
  private checkFits(manifest: ModelManifest, current: VerifiedModel | undefined, source: string): void {
    const problems: string[] = [];
    if (current) {
      const computed = new Set(current.manifest.inputs[0]?.features.map((f) => f.name));
      const unknown = (manifest.inputs[0]?.features ?? []).map((f) => f.name).filter((f) => !computed.has(f));
      if (unknown.length > 0) problems.push(`it reads features this node does not compute (${unknown.join(', ')})`);
    }
    const labels = new Set(manifest.outputs[0]?.labels);
    const missing = (this.options.ruleLabels[manifest.name] ?? []).filter((l) => !labels.has(l));
    if (missing.length > 0) problems.push(`it has no label ${missing.join(', ')}, which decision rules here watch`);
    if (problems.length === 0) return;
    throw new ApiaryError(ErrorCodes.MODEL_UPDATE_INVALID, `${source}: ${manifest.name} ${manifest.version} does not fit this node: ${problems.join('; ')}`, {
      hint: 'publish a version with the same inputs and labels, or change the decision rules (decisions[].input) first',
    });
  }

  private async load(): Promise<Record<string, string>> {
    if (this.recorded) return this.recorded;
    const stored = await new AtomicJsonFile<unknown>(this.options.file).read();
    const parsed = pinsSchema.safeParse(stored ?? { version: 1, signers: {} });
    if (!parsed.success) {
      throw new ApiaryError(ErrorCodes.STORAGE_CORRUPT, `${this.options.file} (the pinned model signers) is damaged`, {
        hint: 'restore it from a backup, or set models.trust.signers in the config and move the file aside',
      });
    }
    this.recorded = parsed.data.signers;
    return this.recorded;
  }
}

/** The release rules of this node: signer pins (recorded in <dataDir>/model-signers.json), the labels its rules watch. */
export function releasePolicyFromConfig(config: ApiaryConfig, trust: ModelTrust): ModelReleasePolicy {
  return new ModelReleasePolicy({
    file: path.join(config.node.dataDir, 'model-signers.json'),
    trust,
    ruleLabels: ModelReleasePolicy.ruleLabels(config.decisions.map((rule) => rule.input)),
  });
}
