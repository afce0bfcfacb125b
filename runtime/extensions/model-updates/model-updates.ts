/**
 * Model updates over the mesh. An owner publishes a signed model through
 * one of their nodes (`apiary models publish`); it travels as chunk entries
 * plus a release entry in that node's feed (models/registry/model-release.ts),
 * so it crosses partitions and reaches late nodes like any entry. A node
 * that runs a model of that name and trusts the signing owner puts the file
 * back together, checks every hash and the signature, swaps it in
 * atomically (keeping the previous version), loads it and tests it. If the
 * new version fails to load or gives invalid outputs, now or later, the node
 * rolls back and says so in its own feed (`model-update` entries).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { PREVIOUS_SUFFIX, rollBackModel, stagingDir, swapInModel } from '../../../models/registry/model-install.js';
import { verifyManifestSignature, verifyModelDir, trustedSignerName, type ModelTrust } from '../../../models/registry/manifest-signature.js';
import { MANIFEST_FILE } from '../../../models/registry/manifest.js';
import { assembleModel, chunkModel, MODEL_CHUNK_TYPE, MODEL_RELEASE_TYPE, parseRelease, releaseBody, type ParsedRelease } from '../../../models/registry/model-release.js';
import type { VerifiedModel } from '../../../models/registry/model-runner.js';
import type { Counters } from '../../counters.js';
import { ApiaryError, describeError, ErrorCodes, isApiaryError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import type { Mesh } from '../../mesh/mesh.js';
import { AtomicJsonFile } from '../../storage/atomic-json-file.js';
import type { ModelReleasePolicy } from './model-release-policy.js';

export const MODEL_UPDATE_TYPE = 'model-update';

/** Where a node keeps the releases it has received but not yet handled. */
export function pendingReleasesFile(dataDir: string): string {
  return path.join(dataDir, 'mesh', 'model-releases-pending.json');
}

/** What the updater needs from the part that runs models (the kernel's ModelHost). */
export interface UpdatableModels {
  readonly modelsDir: string;
  names(): readonly string[];
  loaded(name: string): VerifiedModel | undefined;
  reload(name: string): Promise<VerifiedModel>;
}

export type UpdateStatus = 'installed' | 'rolled-back' | 'refused' | 'skipped';

export interface UpdateReport {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  /** The release entry: origin and seq (unknown for a model rolled back after a restart, or installed by hand). */
  readonly release?: { readonly origin: string; readonly seq: number };
  readonly status: UpdateStatus;
  readonly code?: string;
  readonly reason?: string;
  /** The version running after this update (or its rollback). */
  readonly running?: { readonly version: string; readonly sha256: string } | undefined;
}

export interface ModelUpdatesContext {
  readonly mesh: Mesh;
  /**
   * Releases received but not yet handled, kept on disk so a kill -9 or a
   * power cut between receiving a release and installing it does not lose it:
   * the feed will not deliver that entry again.
   */
  readonly pendingFile: string;
  readonly host: UpdatableModels;
  readonly trust: ModelTrust;
  /** Signer pins, fit with the node's features and rules, version steps (model-release-policy.ts). */
  readonly policy: ModelReleasePolicy;
  readonly counters: Counters;
  readonly logger: Logger;
}

interface PendingRelease {
  readonly origin: string;
  readonly seq: number;
}
const pendingSchema = z.array(z.strictObject({ origin: z.string().regex(/^[a-z2-7]{12}$/), seq: z.number().int().min(1) })).max(1000);

/** The entries of `origin`'s feed at `seqs` that this node holds, read in one pass from the lowest to the highest. */
async function readEntries(mesh: Mesh, origin: string, seqs: readonly number[]): Promise<Map<number, FeedEntry>> {
  const wanted = new Set(seqs);
  const found = new Map<number, FeedEntry>();
  if (wanted.size === 0) return found;
  const first = Math.min(...wanted);
  for await (const e of mesh.store.read(origin, first, Math.max(...wanted) - first + 1)) if (wanted.has(e.seq)) found.set(e.seq, e);
  return found;
}

/** Reports kept for status. */
const RECENT_REPORTS = 20;

export class ModelUpdates {
  private queue: Promise<unknown> = Promise.resolve();
  private running = false;
  /** name -> the version this updater installed, and from which release (a later invalid output rolls it back). */
  private readonly installedByUpdate = new Map<string, { sha256: string; release: UpdateReport['release'] }>();
  /** Models whose rollback is queued: a burst of bad outputs rolls back once. */
  private readonly rollingBack = new Set<string>();
  readonly recent: UpdateReport[] = [];

  constructor(private readonly ctx: ModelUpdatesContext) {}

  private pending: PendingRelease[] = [];
  private pendingWrites: Promise<unknown> = Promise.resolve();

  private readonly onEntry = (entry: FeedEntry): void => {
    if (entry.type === MODEL_RELEASE_TYPE) this.handle(entry).catch(() => undefined); // logged by enqueue
  };

  /**
   * Listens for releases; none is handled before `ready` (the models' first
   * load) settles. Releases left pending by a crash are handled first.
   */
  start(ready: Promise<unknown> = Promise.resolve()): void {
    this.running = true;
    this.queue = ready.catch(() => undefined);
    this.ctx.mesh.on('entry', this.onEntry);
    this.enqueue(() => this.resumePending()).catch(() => undefined); // logged by enqueue
  }

  async stop(): Promise<void> {
    this.running = false;
    this.ctx.mesh.off('entry', this.onEntry);
    await this.queue;
    await this.pendingWrites;
  }

  /** Notes the release as pending (on disk), then handles it in turn. */
  private handle(entry: FeedEntry): Promise<UpdateReport | undefined> {
    this.pending.push({ origin: entry.origin, seq: entry.seq });
    void this.savePending();
    return this.enqueue(async () => {
      try {
        return await this.onRelease(entry);
      } finally {
        if (this.running) {
          this.pending = this.pending.filter((p) => p.origin !== entry.origin || p.seq !== entry.seq);
          await this.savePending();
        }
      }
    });
  }

  private async resumePending(): Promise<undefined> {
    const { counters, logger, pendingFile, mesh } = this.ctx;
    let stored: unknown;
    try {
      stored = await new AtomicJsonFile<unknown>(pendingFile).read();
    } catch (err) {
      counters.increment('models.updates.pending_invalid');
      logger.warn({ err: describeError(err), file: pendingFile }, 'the list of pending model releases is unreadable: starting a new one');
    }
    const parsed = pendingSchema.safeParse(stored ?? []);
    if (!parsed.success) counters.increment('models.updates.pending_invalid');
    for (const ref of parsed.success ? parsed.data : []) {
      const entry = (await readEntries(mesh, ref.origin, [ref.seq])).get(ref.seq);
      if (entry?.type !== MODEL_RELEASE_TYPE) continue; // dropped by retention meanwhile
      logger.info(ref, 'resuming a model release received before the last stop');
      this.handle(entry).catch(() => undefined); // logged by enqueue
    }
    await this.savePending();
    return undefined;
  }

  /** Writes are chained, so the file always ends with the latest list. */
  private savePending(): Promise<unknown> {
    const list = [...this.pending];
    const file = new AtomicJsonFile<PendingRelease[]>(this.ctx.pendingFile);
    this.pendingWrites = this.pendingWrites.then(() => mkdir(path.dirname(this.ctx.pendingFile), { recursive: true })).then(() => file.write(list)).catch((err: unknown) => {
      this.ctx.counters.increment('models.updates.pending_write_failed');
      this.ctx.logger.warn({ err: describeError(err) }, 'could not save the list of pending model releases');
    });
    return this.pendingWrites;
  }

  /**
   * Publishes a model folder to the mesh: it must be signed by an owner
   * this node trusts (so the node never spreads what it would refuse).
   * The node installs it itself through the same path as its neighbours.
   */
  async publish(dir: string): Promise<UpdateReport | undefined> {
    const verdict = await verifyModelDir(path.resolve(dir), this.ctx.trust);
    if (verdict.shipped) {
      throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${dir} is a model shipped with Apiary: every node has it already`, {
        hint: 'publish a retrained model: copy the folder, change it, bump its version and sign it (`apiary models sign`)',
      });
    }
    const { mesh } = this.ctx;
    const seqs: number[] = [];
    for (const chunk of chunkModel(verdict.file.bytes)) seqs.push((await mesh.append(MODEL_CHUNK_TYPE, chunk)).seq);
    const entry = await mesh.append(MODEL_RELEASE_TYPE, releaseBody(verdict.json, verdict.manifest, verdict.file.bytes, seqs));
    this.ctx.logger.info({ name: verdict.manifest.name, version: verdict.manifest.version, chunks: seqs.length, seq: entry.seq }, 'model published to the mesh');
    return this.handle(entry);
  }

  /**
   * A model from the models folder (not shipped) refused its inputs or gave
   * invalid outputs in service: roll it back, whoever installed it, since the
   * previous or shipped version is known to work.
   */
  onInvalidOutput(model: VerifiedModel, err: Error): void {
    const code = isApiaryError(err) ? err.code : ErrorCodes.MODEL_OUTPUT_INVALID;
    const name = model.manifest.name;
    if (model.signer === 'shipped' || this.rollingBack.has(model.sha256)) return;
    this.rollingBack.add(model.sha256);
    const release = this.installedByUpdate.get(name)?.release;
    this.installedByUpdate.delete(name);
    this.enqueue(async () => {
      const running = await this.rollBack(name);
      this.rollingBack.delete(model.sha256);
      return this.report({ name, version: model.manifest.version, sha256: model.sha256, ...(release ? { release } : {}), status: 'rolled-back', code, reason: `in service: ${err.message}`, running });
    }).catch(() => undefined); // logged by enqueue
  }

  /** One update at a time, in arrival order; a failure is counted and logged, and the next one still runs. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch((err: unknown) => {
      this.ctx.counters.increment('models.updates.errors');
      this.ctx.logger.error({ err: describeError(err) }, 'model update failed');
    });
    return next;
  }

  private async onRelease(entry: FeedEntry): Promise<UpdateReport | undefined> {
    if (!this.running) return undefined;
    const source = `model release ${entry.origin}#${entry.seq}`;
    let release: ParsedRelease;
    try {
      const read = this.ctx.mesh.readEntry(entry);
      release = parseRelease(read?.body, source);
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      this.ctx.counters.increment('models.updates.malformed');
      this.ctx.logger.warn({ err: describeError(err) }, `${source} rejected`);
      return undefined;
    }
    const { body } = release;
    const base = { name: body.name, version: body.version, sha256: body.sha256, release: { origin: entry.origin, seq: entry.seq } };
    const { host } = this.ctx;
    if (!host.names().includes(body.name)) return this.report({ ...base, status: 'skipped', reason: `this node does not run a model named ${body.name}` }, { quiet: true });
    let signer: string;
    try {
      signer = verifyManifestSignature(body.manifest, source);
      trustedSignerName(signer, this.ctx.trust, source);
      const current = host.loaded(body.name);
      // The manifest is part of the model (normalisation, labels): the same file under a new version is a new model.
      if (current?.sha256 === body.sha256 && current.manifest.version === body.version) return this.report({ ...base, status: 'skipped', reason: 'this version runs already' }, { quiet: true });
      const verdict = await this.ctx.policy.check({ manifest: release.manifest, signer }, current, source);
      if (!verdict.install) return this.report({ ...base, status: 'skipped', reason: verdict.skip });
      // One pass over the publisher's log for all chunks, not one scan per chunk.
      const chunks = await readEntries(this.ctx.mesh, entry.origin, body.chunks.map((c) => c.seq));
      const bytes = await assembleModel(body, (seq) => {
        const chunk = chunks.get(seq);
        return Promise.resolve(chunk && this.ctx.mesh.readEntry(chunk));
      });
      const staged = await stagingDir(host.modelsDir, body.name);
      await mkdir(staged);
      await writeFile(path.join(staged, release.manifest.file), bytes);
      await writeFile(path.join(staged, MANIFEST_FILE), `${JSON.stringify(body.manifest, null, 2)}\n`);
      await verifyModelDir(staged, this.ctx.trust); // what the node loads is what is on disk
      await swapInModel(host.modelsDir, body.name, staged);
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      return this.report({ ...base, status: 'refused', code: err.code, reason: err.message });
    }
    try {
      const model = await host.reload(body.name);
      this.installedByUpdate.set(body.name, { sha256: model.sha256, release: base.release });
      const report = await this.report({ ...base, status: 'installed', running: { version: model.manifest.version, sha256: model.sha256 } });
      await this.ctx.policy.recordInstalled(body.name, signer);
      return report;
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      const running = await this.rollBack(body.name);
      return this.report({ ...base, status: 'rolled-back', code: err.code, reason: err.message, running });
    }
  }

  /** Puts the previous version back in place and loads it (or the shipped one, if there was none). */
  private async rollBack(name: string): Promise<UpdateReport['running']> {
    const { host, logger } = this.ctx;
    const { restoredPrevious } = await rollBackModel(host.modelsDir, name);
    try {
      const model = await host.reload(name);
      return { version: model.manifest.version, sha256: model.sha256 };
    } catch (err) {
      // The running model was never replaced (reload only swaps after its checks), so it runs on.
      logger.error({ err: describeError(err), name, restoredPrevious, previous: path.join(host.modelsDir, name + PREVIOUS_SUFFIX) }, `rolling back ${name}: the restored version does not load either; the running version stays`);
      const running = host.loaded(name);
      return running && { version: running.manifest.version, sha256: running.sha256 };
    }
  }

  /** Counts and logs every outcome; installs and rollbacks also go into this node's feed, for its owner and neighbours. */
  private async report(report: UpdateReport, { quiet = false } = {}): Promise<UpdateReport> {
    const { counters, logger, mesh } = this.ctx;
    counters.increment(`models.updates.${report.status.replace('-', '_')}`);
    this.recent.push(report);
    if (this.recent.length > RECENT_REPORTS) this.recent.shift();
    const from = report.release ? ` from ${report.release.origin}#${report.release.seq}` : '';
    const line = `model ${report.name} ${report.version}${from}: ${report.status}${report.reason ? ` (${report.reason})` : ''}`;
    if (report.status === 'installed') logger.info({ running: report.running }, line);
    else if (!quiet) logger.warn({ code: report.code }, line);
    if (report.status === 'installed' || report.status === 'rolled-back') await mesh.append(MODEL_UPDATE_TYPE, report);
    return report;
  }
}
