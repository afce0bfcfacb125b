/**
 * Where installed runtime releases live and which one runs: two release
 * directories (A/B) beside the packaged ("factory") app, the way RAUC or
 * Mender keep two root filesystems, but inside the node's data dir (the only
 * place the service may write, ProtectSystem=strict):
 *
 *   <dataDir>/runtime/state.json    which slot runs, the trial, outcomes (atomic write-then-rename)
 *   <dataDir>/runtime/current       symlink to the running tree (switched by rename(2), atomic)
 *   <dataDir>/runtime/slots/{a,b}   unpacked releases
 *   <dataDir>/runtime/releases/     the release files of the slots, served to neighbours
 *
 * state.json is the record; `current` mirrors it and is put right at every
 * boot. A new release runs as a *trial*: the launcher counts its boots (like
 * U-Boot's bootcount), and a trial that boots a second time without having
 * been confirmed healthy (it crashed, the watchdog killed it, the power was
 * cut) is rolled back to the release it replaced.
 *
 * No zod here: the launcher loads this on every start and stays small.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { ApiaryError, ErrorCodes } from '../../errors.js';

export type SlotName = 'a' | 'b';
export type ReleaseLocation = SlotName | 'factory';

export interface ReleaseRef { readonly slot: ReleaseLocation; readonly version: string }

export interface Trial {
  readonly slot: SlotName;
  readonly version: string;
  readonly sha256: string;
  /** What it replaced: restored if the trial fails. */
  readonly from: ReleaseRef;
  readonly installedAt: string;
  /** Starts of the trial so far (the launcher adds one before each). */
  readonly boots: number;
  /** How long it has to show it is healthy, from its start. */
  readonly windowMs: number;
}

export type OutcomeKind = 'committed' | 'rolled-back';

export interface Outcome {
  readonly version: string;
  readonly from: string;
  readonly outcome: OutcomeKind;
  readonly reason: string;
  readonly at: string;
  /** Put in the node's feed yet. */
  readonly reported: boolean;
}

export interface RuntimeState {
  readonly format: 1;
  readonly current: ReleaseRef;
  /** The release before the current one, if its tree is still there (for `apiary update rollback`). */
  readonly previous: ReleaseRef | null;
  readonly trial: Trial | null;
  /** Newest last, at most MAX_OUTCOMES. */
  readonly outcomes: readonly Outcome[];
}

export const MAX_OUTCOMES = 20;
export const STATE_FILE = 'state.json';

export function runtimeDir(dataDir: string): string {
  return path.join(dataDir, 'runtime');
}

export function slotDir(dir: string, slot: SlotName): string {
  return path.join(dir, 'slots', slot);
}

export function factoryState(factoryVersion: string): RuntimeState {
  return { format: 1, current: { slot: 'factory', version: factoryVersion }, previous: null, trial: null, outcomes: [] };
}

// ---- reading and writing ------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isRef = (v: unknown): v is ReleaseRef => isObject(v) && (v.slot === 'a' || v.slot === 'b' || v.slot === 'factory') && typeof v.version === 'string' && semver.valid(v.version) !== null;
const isTrial = (v: unknown): v is Trial => isObject(v) && (v.slot === 'a' || v.slot === 'b') && typeof v.version === 'string' && typeof v.sha256 === 'string' &&
  isRef(v.from) && typeof v.installedAt === 'string' && Number.isInteger(v.boots) && Number.isInteger(v.windowMs);
const isOutcome = (v: unknown): v is Outcome => isObject(v) && typeof v.version === 'string' && typeof v.from === 'string' &&
  (v.outcome === 'committed' || v.outcome === 'rolled-back') && typeof v.reason === 'string' && typeof v.at === 'string' && typeof v.reported === 'boolean';

/** The state, or undefined if there is none; throws RELEASE_INVALID (naming the file) if it is damaged. */
export function readState(dir: string): RuntimeState | undefined {
  const file = path.join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${file} is not JSON: ${(err as Error).message}`, { hint: 'the packaged release runs until a release is installed again' });
  }
  if (!isObject(json) || json.format !== 1 || !isRef(json.current) || !(json.previous === null || isRef(json.previous)) ||
    !(json.trial === null || isTrial(json.trial)) || !Array.isArray(json.outcomes) || !json.outcomes.every(isOutcome)) {
    throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${file} is not a runtime state this version reads`, { hint: 'the packaged release runs until a release is installed again' });
  }
  return json as unknown as RuntimeState;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write-then-rename, with the file and its folder forced to disk: a power cut leaves the old state or the new one. */
export function writeState(dir: string, state: RuntimeState): void {
  const file = path.join(dir, STATE_FILE);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dir);
}

/** Where `ref` is on disk. */
export function locationOf(dir: string, ref: ReleaseRef, factoryRoot: string): string {
  return ref.slot === 'factory' ? factoryRoot : slotDir(dir, ref.slot);
}

/** Points `current` at `target` atomically: a new link beside it, renamed over it. */
export function pointCurrent(dir: string, target: string): void {
  const link = path.join(dir, 'current');
  const want = path.isAbsolute(target) && target.startsWith(`${dir}${path.sep}`) ? path.relative(dir, target) : target;
  try {
    if (readlinkSync(link) === want) return;
  } catch {
    // absent or not a link: replaced below
  }
  const tmp = `${link}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(want, tmp);
  renameSync(tmp, link);
  fsyncDir(dir);
}

// ---- the install lock ----------------------------------------------------

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` holding <dir>/lock (O_EXCL, with our pid; a dead holder's lock is taken over). */
export async function withLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const file = path.join(dir, 'lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = Number(readFileSync(file, 'utf8'));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new ApiaryError(ErrorCodes.UPDATE_BUSY, `another apiary process (pid ${holder}) is changing the installed releases`, { hint: 'wait for it to finish, then try again' });
      }
      unlinkSync(file);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

// ---- decisions (pure) ----------------------------------------------------

function withOutcome(state: RuntimeState, outcome: Omit<Outcome, 'reported'>): readonly Outcome[] {
  return [...state.outcomes, { ...outcome, reported: false }].slice(-MAX_OUTCOMES);
}

/** The trial is healthy: it becomes the current release, and what it replaced the previous one. */
export function commitTrial(state: RuntimeState, reason: string, now: Date): RuntimeState {
  const { trial } = state;
  if (!trial) return state;
  return {
    ...state, current: { slot: trial.slot, version: trial.version }, previous: trial.from, trial: null,
    outcomes: withOutcome(state, { version: trial.version, from: trial.from.version, outcome: 'committed', reason, at: now.toISOString() }),
  };
}

/** The trial failed: what it replaced runs again. */
export function rollBackTrial(state: RuntimeState, reason: string, now: Date): RuntimeState {
  const { trial } = state;
  if (!trial) return state;
  return {
    ...state, current: trial.from, previous: null, trial: null,
    outcomes: withOutcome(state, { version: trial.version, from: trial.from.version, outcome: 'rolled-back', reason, at: now.toISOString() }),
  };
}

export interface BootFacts {
  readonly factoryVersion: string;
  /** Whether a slot's tree is there to run (dist/apiary.mjs). */
  slotReady(slot: SlotName): boolean;
  readonly now: Date;
}

export interface BootDecision {
  readonly state: RuntimeState;
  /** What to run now. */
  readonly run: ReleaseRef;
  /** Set when `run` is a trial on its first boot. */
  readonly trial?: Trial;
  /** Whether `state` differs from what was read (the launcher writes it before it runs anything). */
  readonly changed: boolean;
  /** For the log. */
  readonly notes: readonly string[];
}

export const RESTARTED_IN_WINDOW = 'it stopped before it was confirmed healthy (a crash, a hung event loop killed by the watchdog, or a power cut during its health window)';

/** What the launcher runs at a `start`, and the state to record first. */
export function bootDecision(read: RuntimeState | undefined, facts: BootFacts): BootDecision {
  const notes: string[] = [];
  let state = read ?? factoryState(facts.factoryVersion);
  const original = state;
  if (state.trial) {
    if (state.trial.boots >= 1) {
      notes.push(`release ${state.trial.version} is rolled back to ${state.trial.from.version}: ${RESTARTED_IN_WINDOW}`);
      state = rollBackTrial(state, RESTARTED_IN_WINDOW, facts.now);
    } else if (!facts.slotReady(state.trial.slot)) {
      notes.push(`release ${state.trial.version} is rolled back to ${state.trial.from.version}: its slot ${state.trial.slot} is missing or incomplete`);
      state = rollBackTrial(state, `its slot (${state.trial.slot}) is missing or incomplete`, facts.now);
    } else {
      const trial = { ...state.trial, boots: state.trial.boots + 1 };
      state = { ...state, current: { slot: trial.slot, version: trial.version }, trial };
      return { state, run: state.current, trial, changed: true, notes: [`release ${trial.version} starts on trial: it has ${Math.round(trial.windowMs / 1000)} s to show it is healthy`] };
    }
  }
  const { current } = state;
  if (current.slot !== 'factory' && !facts.slotReady(current.slot)) {
    notes.push(`release ${current.version} (slot ${current.slot}) is missing or incomplete: the packaged ${facts.factoryVersion} runs`);
    state = { ...state, current: { slot: 'factory', version: facts.factoryVersion }, previous: null };
  } else if (current.slot !== 'factory' && semver.gt(facts.factoryVersion, current.version)) {
    // apt installed a newer .deb over an older runtime update: the package wins.
    notes.push(`the packaged ${facts.factoryVersion} is newer than the installed release ${current.version}: it runs`);
    state = { ...state, current: { slot: 'factory', version: facts.factoryVersion }, previous: current };
  } else if (current.slot === 'factory' && current.version !== facts.factoryVersion) {
    state = { ...state, current: { slot: 'factory', version: facts.factoryVersion } };
  }
  return { state, run: state.current, changed: state !== original, notes };
}

/** The slot a new release goes into: the one not running. */
export function inactiveSlot(state: RuntimeState): SlotName {
  return state.current.slot === 'a' ? 'b' : 'a';
}
