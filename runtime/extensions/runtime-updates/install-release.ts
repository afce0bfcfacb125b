/**
 * Installs a runtime release into the slot that is not running and makes it
 * the next to start, on trial. Used by `apiary update install <file>` and by
 * the runtime-updates extension for a release fetched over the mesh.
 *
 * Order, so a power cut at any point leaves a bootable board: unpack into a
 * fresh folder beside the slot, force it to disk, rename it into place; then
 * write state.json (the trial) and switch the `current` link. Until the
 * state is written the old release stays the one that runs.
 */
import { execFile } from 'node:child_process';
import { copyFile, lchown, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { extractPayload, readReleaseManifest, sha256File, unpackPayload } from './release-file.js';
import { checkCompatible, verifyManifest, type ReleaseManifest, type ReleaseTrust, type RunningRuntime } from './release-manifest.js';
import {
  factoryState, inactiveSlot, locationOf, pointCurrent, readState, runtimeDir, slotDir, withLock, writeState, type RuntimeState, type SlotName,
} from './release-slots.js';

export interface InstallOptions {
  readonly dataDir: string;
  readonly file: string;
  readonly trust: ReleaseTrust;
  readonly running: RunningRuntime;
  /** Install even if it is not newer than the running version. */
  readonly force?: boolean;
  /** The health window the trial gets. */
  readonly windowMs: number;
  /** The packaged app (/usr/lib/apiary), the release the first update replaces. */
  readonly factoryRoot: string;
  /** Owner of what is written: root installs for the service's user. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  readonly now?: () => Date;
  /** One line per step, for the CLI. */
  readonly progress?: (step: string) => void;
}

export interface Installed {
  readonly manifest: ReleaseManifest;
  readonly signer: { readonly publicKey: string; readonly name: string };
  readonly slot: SlotName;
  readonly state: RuntimeState;
  /** The release file kept for neighbours (releases/). */
  readonly kept: string;
}

/** The file name a release is kept under in <runtime>/releases/. */
export function keptReleaseName(manifest: { readonly version: string; readonly arch: string }): string {
  return `apiary_${manifest.version}_${manifest.arch}.release`;
}

/** Flushes the file system `dir` is on (sync -f: syncfs(2)); a plain `sync` where -f is not known. */
async function syncFileSystem(dir: string): Promise<void> {
  const run = promisify(execFile);
  await run('sync', ['-f', dir]).catch(() => run('sync', []));
}

export async function installRelease(o: InstallOptions): Promise<Installed> {
  const now = o.now ?? (() => new Date());
  const say = o.progress ?? (() => undefined);
  const manifest = await readReleaseManifest(o.file);
  const signer = verifyManifest(manifest, o.trust, o.file);
  say(`${o.file}: Apiary ${manifest.version} for ${manifest.arch}, signed by ${signer.name} (${signer.publicKey.slice(0, 10)}…)`);
  checkCompatible(manifest, o.running, o.force ?? false, o.file);
  const dir = runtimeDir(o.dataDir);
  await mkdir(path.join(dir, 'slots'), { recursive: true, mode: 0o700 });
  await mkdir(path.join(dir, 'releases'), { recursive: true, mode: 0o700 });
  if (o.owner) for (const d of [dir, path.join(dir, 'slots'), path.join(dir, 'releases')]) await lchown(d, o.owner.uid, o.owner.gid);
  return withLock(dir, async () => {
    const before = readState(dir) ?? factoryState(o.running.version);
    if (before.trial) {
      throw new ApiaryError(ErrorCodes.UPDATE_BUSY, `release ${before.trial.version} is still on trial (installed ${before.trial.installedAt})`, {
        hint: 'wait for its health window to end (`apiary update status`), then install again',
      });
    }
    const slot = inactiveSlot(before);
    const staging = path.join(dir, 'slots', `.${slot}.new`);
    const scratch = path.join(dir, 'slots', `.${slot}.payload`);
    await rm(staging, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
    try {
      say(`checking the payload (${(manifest.payload.size / 1024 / 1024).toFixed(1)} MiB)`);
      const payload = await extractPayload(o.file, manifest, scratch);
      say(`unpacking ${manifest.payload.files} files (${(manifest.payload.unpackedBytes / 1024 / 1024).toFixed(1)} MiB) into slot ${slot}`);
      await unpackPayload(payload, manifest, staging, o.owner ?? {});
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    const kept = path.join(dir, 'releases', keptReleaseName(manifest));
    if (path.resolve(o.file) !== kept) {
      await copyFile(o.file, `${kept}.tmp`);
      await rename(`${kept}.tmp`, kept);
    }
    await syncFileSystem(staging);
    await rm(slotDir(dir, slot), { recursive: true, force: true });
    await rename(staging, slotDir(dir, slot));
    const state: RuntimeState = {
      ...before,
      current: { slot, version: manifest.version },
      // The other slot's tree is overwritten: it can no longer be gone back to.
      previous: before.previous?.slot === slot ? null : before.previous,
      trial: { slot, version: manifest.version, sha256: await sha256File(kept), from: before.current, installedAt: now().toISOString(), boots: 0, windowMs: o.windowMs },
    };
    writeState(dir, state);
    pointCurrent(dir, slotDir(dir, slot));
    await pruneKeptReleases(dir, state);
    // node-tar gave the unpacked files and folders to the owner (uid/gid; a link's own owner grants nothing);
    // what this function made itself is given here, rather than walking the 5,000-file tree again.
    if (o.owner) for (const made of [slotDir(dir, slot), path.join(dir, 'state.json'), path.join(dir, 'current'), kept]) await lchown(made, o.owner.uid, o.owner.gid);
    say(`slot ${slot} holds ${manifest.version}; it starts on trial at the next start of the node, and ${before.current.version} comes back if it is not healthy within ${Math.round(o.windowMs / 1000)} s`);
    return { manifest, signer, slot, state, kept };
  });
}

/** Keeps the release files of the releases that can still run (current, trial, previous); removes the rest. */
async function pruneKeptReleases(dir: string, state: RuntimeState): Promise<void> {
  const wanted = new Set([state.current, state.previous, state.trial].flatMap((r) => (r && r.slot !== 'factory' ? [r.version] : [])));
  for (const name of await readdir(path.join(dir, 'releases'))) {
    const version = /^apiary_(.+)_(arm64|x64)\.release$/.exec(name)?.[1];
    if (version === undefined || !wanted.has(version)) await rm(path.join(dir, 'releases', name), { force: true });
  }
}

/** Goes back to the previous release by hand (`apiary update rollback`), from the next start. */
export async function rollBackByHand(dataDir: string, factoryRoot: string, now = new Date()): Promise<RuntimeState> {
  const dir = runtimeDir(dataDir);
  return withLock(dir, () => {
    const state = readState(dir);
    if (!state?.previous) {
      throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'there is no previous release to go back to', { hint: '`apiary update status` shows what is installed' });
    }
    if (state.trial) {
      throw new ApiaryError(ErrorCodes.UPDATE_BUSY, `release ${state.trial.version} is on trial: it goes back by itself if it is not healthy`, { hint: 'wait for its health window to end' });
    }
    const next: RuntimeState = {
      ...state, current: state.previous, previous: state.current,
      outcomes: [...state.outcomes, { version: state.current.version, from: state.previous.version, outcome: 'rolled-back' as const, reason: 'rolled back by hand (apiary update rollback)', at: now.toISOString(), reported: false }].slice(-20),
    };
    writeState(dir, next);
    pointCurrent(dir, locationOf(dir, next.current, factoryRoot));
    return next;
  });
}
