/**
 * The launcher: what /usr/bin/apiary runs (bundled to dist/launcher.mjs). It
 * stays with the packaged app and is never replaced by a runtime update, the
 * way a bootloader outlives the systems it boots. It picks the release to
 * run from <APIARY_DATA_DIR>/runtime (release-slots.ts), and for a `start`
 * counts a trial's boots and rolls back one that started before without
 * being confirmed; then it loads that release's CLI in this same process
 * (no second Node.js in RAM).
 *
 * Whatever goes wrong here, the packaged release runs: the update machinery
 * must never be what stops a node from starting.
 *
 * A backstop: if a trial has neither been confirmed nor rolled back by its
 * own runtime-updates extension within its window (plus a grace), the
 * launcher rolls it back and exits with EXIT_ROLLBACK; systemd
 * (Restart=on-failure) starts the node again, on the release before.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT_ROLLBACK } from './launched-release.js';
import {
  bootDecision, locationOf, pointCurrent, readState, rollBackTrial, runtimeDir, slotDir, writeState, type ReleaseRef, type RuntimeState, type Trial,
} from './release-slots.js';

/** How long past its window a trial may stay unconfirmed before the launcher steps in. */
export const BACKSTOP_GRACE_MS = 60_000;


const say = (line: string) => process.stderr.write(`apiary launcher: ${line}\n`);

function versionAt(root: string): string {
  return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

const entryOf = (root: string) => path.join(root, 'dist', 'apiary.mjs');

function backstop(dir: string, trial: Trial, factoryRoot: string): void {
  const timer = setTimeout(() => {
    let state: RuntimeState | undefined;
    try {
      state = readState(dir);
    } catch {
      return;
    }
    if (!state?.trial || state.trial.installedAt !== trial.installedAt) return; // confirmed or rolled back meanwhile
    const reason = `it did not confirm it was healthy within ${Math.round((trial.windowMs + BACKSTOP_GRACE_MS) / 1000)} s`;
    const next = rollBackTrial(state, reason, new Date());
    writeState(dir, next);
    pointCurrent(dir, locationOf(dir, next.current, factoryRoot));
    say(`release ${trial.version} is rolled back to ${next.current.version}: ${reason}; exiting so the service starts it`);
    process.exitCode = EXIT_ROLLBACK;
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(EXIT_ROLLBACK), 30_000).unref();
  }, trial.windowMs + BACKSTOP_GRACE_MS);
  timer.unref();
}

/** Which release to run, recording a `start`'s boot first. Never throws. */
export function chooseRelease(factoryRoot: string, dataDir: string | undefined, isStart: boolean): { root: string; ref: ReleaseRef } {
  const factoryVersion = versionAt(factoryRoot);
  const factory = { root: factoryRoot, ref: { slot: 'factory' as const, version: factoryVersion } };
  if (dataDir === undefined || dataDir === '') return factory;
  const dir = runtimeDir(dataDir);
  if (!existsSync(dir)) return factory;
  try {
    const read = readState(dir);
    const slotReady = (slot: 'a' | 'b') => existsSync(entryOf(slotDir(dir, slot)));
    if (!isStart) {
      const current = read?.current;
      if (!current || current.slot === 'factory' || !slotReady(current.slot)) return factory;
      return { root: slotDir(dir, current.slot), ref: current };
    }
    const decision = bootDecision(read, { factoryVersion, slotReady, now: new Date() });
    for (const note of decision.notes) say(note);
    if (decision.changed) writeState(dir, decision.state);
    const root = locationOf(dir, decision.run, factoryRoot);
    pointCurrent(dir, root);
    if (decision.trial) backstop(dir, decision.trial, factoryRoot);
    return { root, ref: decision.run };
  } catch (err) {
    say(`cannot use the installed releases (${(err as Error).message}): the packaged ${factoryVersion} runs`);
    return factory;
  }
}
