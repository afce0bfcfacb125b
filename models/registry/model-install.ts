/**
 * Installing a model into a node's models folder, one rename at a time so a
 * crash or power cut leaves either the old or the new version in place,
 * never half of one: the new folder is written and verified beside the
 * target, the current one is renamed to `<name>.previous`, the new one
 * renamed into place, and the folder fsynced. Rolling back is the same
 * moves the other way; the refused version is kept as `<name>.rejected`
 * for the owner to look at.
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../../runtime/storage/atomic-json-file.js';
import { ensureDir } from '../../runtime/storage/data-dir.js';

export const PREVIOUS_SUFFIX = '.previous';
export const REJECTED_SUFFIX = '.rejected';

/** A fresh staging folder beside the target (same filesystem, so the final rename is atomic). */
export async function stagingDir(root: string, name: string): Promise<string> {
  await ensureDir(root); // level by level: an impossible data dir fails at once, with a fix
  const dir = path.join(root, `.${name}.tmp-${process.pid}-${Date.now().toString(36)}`);
  await rm(dir, { recursive: true, force: true });
  return dir;
}

/**
 * Moves a staged, verified folder into `<root>/<name>`; the folder it
 * replaces becomes `<name>.previous` (an older previous is dropped).
 * Returns whether there was a version to keep.
 */
export async function swapInModel(root: string, name: string, staged: string): Promise<{ target: string; keptPrevious: boolean }> {
  const target = path.join(root, name);
  const previous = target + PREVIOUS_SUFFIX;
  const keptPrevious = existsSync(target);
  if (keptPrevious) {
    await rm(previous, { recursive: true, force: true });
    await rename(target, previous);
  }
  await rename(staged, target);
  await fsyncDir(root);
  return { target, keptPrevious };
}

/**
 * Undoes `swapInModel`: the installed folder becomes `<name>.rejected` and
 * `<name>.previous` goes back into place. Without a previous folder the
 * model dir is just emptied, so the node falls back to the shipped model.
 */
export async function rollBackModel(root: string, name: string): Promise<{ restoredPrevious: boolean }> {
  const target = path.join(root, name);
  const previous = target + PREVIOUS_SUFFIX;
  const rejected = target + REJECTED_SUFFIX;
  await rm(rejected, { recursive: true, force: true });
  if (existsSync(target)) await rename(target, rejected);
  const restoredPrevious = existsSync(previous);
  if (restoredPrevious) await rename(previous, target);
  await fsyncDir(root);
  return { restoredPrevious };
}
