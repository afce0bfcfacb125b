// Shared paths and fixtures for the model tests: real files from the repository.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOsbhDat } from '../../models/features/audio-bands.js';
import { ApiaryError } from '../../runtime/errors.js';
import type { ErrorCode } from '../../runtime/errors.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HIVE_SOUND_DIR = path.join(REPO_ROOT, 'models', 'hive-sound');
export const HIVE_THERMAL_DIR = path.join(REPO_ROOT, 'models', 'hive-thermal');
export const OSBH_AUDIO_DIR = path.join(REPO_ROOT, 'devices', 'sim', 'data', 'osbh-audio');

export function readClip(file: 'Active.dat' | 'Pre-Swarm.dat' | 'Swarm.dat'): Float32Array {
  const full = path.join(OSBH_AUDIO_DIR, file);
  return parseOsbhDat(readFileSync(full, 'utf8'), full);
}

/** Runs `fn` with a fresh temp dir that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-models-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Awaits `promise` (or calls `fn`) and returns the ApiaryError it must fail with. */
export async function expectApiaryError(run: () => unknown, code: ErrorCode): Promise<ApiaryError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof ApiaryError && err.code === code) return err;
    throw new Error(`expected ApiaryError ${code}, got ${String(err)}`, { cause: err });
  }
  throw new Error(`expected ApiaryError ${code}, but nothing was thrown`);
}
