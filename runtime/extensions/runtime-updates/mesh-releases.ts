/**
 * Runtime releases over the mesh. An owner publishes from a node that already
 * runs the release (`apiary update publish`: only a release that has been
 * kept, so every node it reaches gets one that ran healthy at least once).
 * That node appends a small `runtime-release` entry to its feed:
 *
 *   runtime-release { manifest: <signed release.json>, blob: <BlobDescriptor of the .release file> }
 *
 * and serves the file in checked chunks (runtime/mesh/blob-transfer.ts). The
 * entry crosses partitions and reaches late nodes like any other. A node
 * whose owner (or updates.trust.owners) signed it, that can run it and runs
 * an older version, fetches the file from whichever neighbours hold it,
 * checks that it is the announced release, installs it into its other slot
 * and restarts into the trial (install-release.ts, launcher.ts). It then
 * serves the file too. A version that was rolled back here is not fetched
 * again; a newer one is.
 */
import { existsSync, statfsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isDeepStrictEqual } from 'node:util';
import type { Counters } from '../../counters.js';
import { ApiaryError, describeError, ErrorCodes, isApiaryError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { decodeBlobDescriptor, describeBlobFile, type BlobDescriptor } from '../../mesh/blob-descriptor.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import type { Mesh } from '../../mesh/mesh.js';
import { AtomicJsonFile } from '../../storage/atomic-json-file.js';
import { installRelease, keptReleaseName, type Installed } from './install-release.js';
import { readReleaseManifest } from './release-file.js';
import { checkCompatible, parseManifest, verifyManifest, type ReleaseManifest, type ReleaseTrust, type RunningRuntime } from './release-manifest.js';
import { readState, type RuntimeState } from './release-slots.js';

export const RUNTIME_RELEASE_TYPE = 'runtime-release';

const announcementSchema = z.strictObject({ manifest: z.record(z.string(), z.unknown()), blob: z.unknown() });
export interface Announcement { readonly manifest: ReleaseManifest; readonly blob: BlobDescriptor }

const pendingSchema = z.strictObject({ origin: z.string().regex(/^[a-z2-7]{12}$/), seq: z.number().int().min(1), announcement: announcementSchema });
type Pending = z.infer<typeof pendingSchema>;

export interface MeshReleasesContext {
  readonly mesh: Mesh;
  /** <dataDir>/runtime */
  readonly dir: string;
  readonly dataDir: string;
  readonly factoryRoot: string;
  readonly trust: ReleaseTrust;
  readonly running: () => RunningRuntime;
  readonly windowMs: number;
  readonly counters: Counters;
  readonly logger: Logger;
  /** A release was installed: restart into its trial. */
  readonly installed: (installed: Installed) => void;
}

/** Checks an announcement from the network: its shape, the manifest's shape, the descriptor's sums. */
export function parseAnnouncement(body: unknown, source: string): Announcement {
  const parsed = announcementSchema.safeParse(body);
  if (!parsed.success) throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${source} is not a runtime release announcement: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return { manifest: parseManifest(parsed.data.manifest, source), blob: decodeBlobDescriptor(parsed.data.blob) };
}

export class MeshReleases {
  private readonly abort = new AbortController();
  private queue: Promise<unknown> = Promise.resolve();
  /** The announcement being handled, so a restart (or a trial in between) resumes it. */
  private readonly pendingFile: AtomicJsonFile<{ pending: Pending | null }>;
  private stopped = false;
  /** For status: the fetch under way. */
  fetching: { version: string; done: number; total: number } | undefined;

  constructor(private readonly ctx: MeshReleasesContext) {
    this.pendingFile = new AtomicJsonFile(path.join(ctx.dir, 'pending-release.json'));
  }

  /** Listens for announcements, serves the kept release files, and resumes a fetch a restart cut short. */
  start(): void {
    this.ctx.mesh.on('entry', this.onEntry);
    this.enqueue(async () => {
      await this.serveKept();
      const pending = await this.readPending();
      if (pending) await this.consider(pending);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.mesh.off('entry', this.onEntry);
    this.abort.abort();
    await this.queue;
  }

  private readonly onEntry = (entry: FeedEntry): void => {
    if (entry.type !== RUNTIME_RELEASE_TYPE) return;
    const read = this.ctx.mesh.readEntry(entry);
    this.enqueue(() => this.consider({ origin: entry.origin, seq: entry.seq, announcement: read?.body as Pending['announcement'] }));
  };

  private enqueue(work: () => Promise<unknown>): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      this.ctx.counters.increment('updates.mesh.errors');
      this.ctx.logger.error({ err: describeError(err) }, 'runtime release from the mesh failed');
    });
  }

  /** Whether this node wants the announced release; if so, fetches and installs it. */
  private async consider(pending: Pending): Promise<void> {
    if (this.stopped) return;
    const source = `runtime release ${pending.origin}#${pending.seq}`;
    let announcement: Announcement;
    try {
      announcement = parseAnnouncement(pending.announcement, source);
      verifyManifest(announcement.manifest, this.ctx.trust, source);
      checkCompatible(announcement.manifest, this.ctx.running(), false, source);
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      // Most announcements are not for this node (another owner's, another board, not newer): counted, quietly.
      const reason = err.code === ErrorCodes.RELEASE_UNTRUSTED ? 'untrusted' : err.code === ErrorCodes.RELEASE_INVALID || err.code === ErrorCodes.BLOB_DESCRIPTOR_INVALID ? 'invalid' : err.code === ErrorCodes.RELEASE_DOWNGRADE ? 'not_newer' : 'incompatible';
      this.ctx.counters.increment(`updates.mesh.skipped.${reason}`);
      if (reason === 'invalid') this.ctx.logger.warn({ err: describeError(err) }, `${source} refused`);
      await this.clearPending(pending);
      return;
    }
    const { manifest, blob } = announcement;
    await mkdir(this.ctx.dir, { recursive: true, mode: 0o700 }); // a node on its packaged release has none yet
    const state = this.state();
    if (state?.trial) {
      // Handled when the node next starts (after the trial settles and restarts it, or now if it is kept).
      await this.pendingFile.write({ pending });
      return;
    }
    if (state?.outcomes.some((o) => o.version === manifest.version && o.outcome === 'rolled-back')) {
      this.ctx.counters.increment('updates.mesh.skipped.rolled_back_before');
      await this.clearPending(pending);
      return;
    }
    await this.pendingFile.write({ pending });
    const incoming = path.join(this.ctx.dir, 'incoming');
    await mkdir(incoming, { recursive: true });
    this.checkSpace(blob, manifest);
    const file = path.join(incoming, `${blob.sha256}.release`);
    this.ctx.logger.info({ version: manifest.version, bytes: blob.size, from: pending.origin }, `fetching runtime release ${manifest.version} (${(blob.size / 1024 / 1024).toFixed(1)} MiB) from the mesh`);
    this.fetching = { version: manifest.version, done: 0, total: blob.chunks.length };
    try {
      await this.ctx.mesh.blobs.fetch(blob, file, {
        signal: this.abort.signal,
        onProgress: (p) => { if (this.fetching) this.fetching = { ...this.fetching, done: p.done }; },
      });
    } finally {
      this.fetching = undefined;
    }
    // The blob is what was announced; now check that it is the release the signed manifest names.
    const inFile = await readReleaseManifest(file);
    if (!isDeepStrictEqual(inFile, manifest)) {
      await rm(file, { force: true });
      await this.clearPending(pending);
      throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${source}: the file fetched holds release ${inFile.version}, not the announced ${manifest.version}`);
    }
    const installed = await installRelease({
      dataDir: this.ctx.dataDir, file, trust: this.ctx.trust, running: this.ctx.running(), windowMs: this.ctx.windowMs, factoryRoot: this.ctx.factoryRoot,
    });
    await rm(file, { force: true });
    await this.clearPending(pending);
    this.ctx.counters.increment('updates.mesh.installed');
    await this.serve(installed.kept);
    this.ctx.installed(installed);
  }

  private async readPending(): Promise<Pending | null> {
    const stored = await this.pendingFile.read().catch(() => null);
    const parsed = z.strictObject({ pending: pendingSchema.nullable() }).safeParse(stored);
    return parsed.success ? parsed.data.pending : null;
  }

  private async clearPending(pending: Pending): Promise<void> {
    const stored = await this.readPending();
    if (stored && stored.origin === pending.origin && stored.seq === pending.seq) await this.pendingFile.write({ pending: null });
  }

  /** Room for the download, the unpacked slot and the kept copy, and some to spare. */
  private checkSpace(blob: BlobDescriptor, manifest: ReleaseManifest): void {
    const fs = statfsSync(this.ctx.dir);
    const free = fs.bavail * fs.bsize;
    const need = 2 * blob.size + manifest.payload.unpackedBytes + 64 * 1024 * 1024;
    if (free < need) {
      this.ctx.counters.increment('updates.mesh.skipped.no_space');
      throw new ApiaryError(ErrorCodes.STORAGE_IO, `not enough space for runtime release ${manifest.version}: ${Math.round(free / 1024 / 1024)} MiB free, ${Math.round(need / 1024 / 1024)} MiB needed`, {
        hint: 'free space on the SD card (journalctl --vacuum-size, old logs), or give storage.streamMaxBytes less',
      });
    }
  }

  private state(): RuntimeState | undefined {
    try {
      return readState(this.ctx.dir);
    } catch {
      return undefined;
    }
  }

  /** Serves a kept release file to the neighbours. */
  private async serve(file: string): Promise<BlobDescriptor> {
    const descriptor = await describeBlobFile(file);
    await this.ctx.mesh.blobs.serve(descriptor, file);
    return descriptor;
  }

  private async serveKept(): Promise<void> {
    const dir = path.join(this.ctx.dir, 'releases');
    if (!existsSync(dir)) return;
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.release') || this.stopped) continue;
      await this.serve(path.join(dir, name)).catch((err: unknown) => this.ctx.logger.warn({ err: describeError(err) }, `cannot serve ${name}`));
    }
  }

  /**
   * Announces a kept release (default: the one running) to the mesh. Refuses
   * one that is still on trial: only a release that ran healthy is spread.
   */
  async publish(version?: string): Promise<{ version: string; sha256: string; size: number; chunks: number; seq: number }> {
    const state = this.state();
    const ref = version === undefined ? state?.current : [state?.current, state?.previous].find((r) => r?.version === version);
    if (!state || !ref || ref.slot === 'factory') {
      throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${version === undefined ? 'the running release is the packaged one' : `release ${version} is not installed here`}: only a release installed with \`apiary update install\` can be published`, {
        hint: 'install the release on this node first; once it is kept, publish it',
      });
    }
    if (state.trial?.version === ref.version) {
      throw new ApiaryError(ErrorCodes.UPDATE_BUSY, `release ${ref.version} is still on trial here`, { hint: 'publish it once `apiary update status` says it is kept' });
    }
    const file = path.join(this.ctx.dir, 'releases', keptReleaseName({ version: ref.version, arch: process.arch }));
    if (!existsSync(file)) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `the release file of ${ref.version} is not kept here (${file})`, { hint: 'install it again with `apiary update install --force`' });
    const manifest = await readReleaseManifest(file);
    const blob = await this.serve(file);
    const entry = await this.ctx.mesh.append(RUNTIME_RELEASE_TYPE, { manifest, blob });
    this.ctx.logger.info({ version: manifest.version, seq: entry.seq }, `announced runtime release ${manifest.version} to the mesh`);
    return { version: manifest.version, sha256: blob.sha256, size: blob.size, chunks: blob.chunks.length, seq: entry.seq };
  }
}
