/**
 * The slot bookkeeping the launcher trusts at every boot: the decisions
 * (a trial's boot count, a missing slot, a newer packaged version) and the
 * state file and link on a real disk.
 */
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import {
  bootDecision, commitTrial, factoryState, inactiveSlot, pointCurrent, readState, RESTARTED_IN_WINDOW, rollBackTrial, withLock, writeState, type RuntimeState,
} from '../../../../runtime/extensions/runtime-updates/release-slots.js';
import { BACKSTOP_GRACE_MS, chooseRelease } from '../../../../runtime/extensions/runtime-updates/launcher.js';
import { expectRefusal } from '../../../support/refusal.js';

const now = new Date('2026-12-02T12:00:00Z');
const ready = { factoryVersion: '0.1.0', slotReady: () => true, now };
const onTrial: RuntimeState = {
  format: 1, current: { slot: 'a', version: '0.2.0' }, previous: null, outcomes: [],
  trial: { slot: 'a', version: '0.2.0', sha256: 'f'.repeat(64), from: { slot: 'factory', version: '0.1.0' }, installedAt: now.toISOString(), boots: 0, windowMs: 60_000 },
};

describe('what the launcher runs', () => {
  it('runs the packaged release when nothing is installed, and writes nothing', () => {
    const d = bootDecision(undefined, ready);
    expect(d.run).toEqual({ slot: 'factory', version: '0.1.0' });
    expect(d.changed).toBe(false);
  });

  it('runs a trial once, counting the boot; a second boot without a confirmation rolls it back', () => {
    const first = bootDecision(onTrial, ready);
    expect(first.run).toEqual({ slot: 'a', version: '0.2.0' });
    expect(first.trial?.boots).toBe(1);
    expect(first.changed).toBe(true);
    const second = bootDecision(first.state, ready);
    expect(second.run).toEqual({ slot: 'factory', version: '0.1.0' });
    expect(second.state.trial).toBeNull();
    expect(second.state.outcomes).toEqual([expect.objectContaining({ version: '0.2.0', from: '0.1.0', outcome: 'rolled-back', reason: RESTARTED_IN_WINDOW, reported: false })]);
  });

  it('rolls back a trial whose slot is missing, and runs the packaged release when the current slot is gone', () => {
    const d = bootDecision(onTrial, { ...ready, slotReady: () => false });
    expect(d.run.slot).toBe('factory');
    expect(d.state.outcomes.at(-1)?.reason).toContain('missing or incomplete');
    const committed = commitTrial(onTrial, 'healthy', now);
    const gone = bootDecision(committed, { ...ready, slotReady: () => false });
    expect(gone.run).toEqual({ slot: 'factory', version: '0.1.0' });
  });

  it('lets a newer .deb win over an older installed release', () => {
    const committed = commitTrial(onTrial, 'healthy', now);
    expect(bootDecision(committed, ready).run).toEqual({ slot: 'a', version: '0.2.0' });
    const upgraded = bootDecision(committed, { ...ready, factoryVersion: '0.3.0' });
    expect(upgraded.run).toEqual({ slot: 'factory', version: '0.3.0' });
    expect(upgraded.notes.join()).toContain('newer than the installed release 0.2.0');
  });

  it('commits into current/previous, rolls back into what the trial replaced, and installs into the other slot', () => {
    const committed = commitTrial(onTrial, 'healthy', now);
    expect(committed).toMatchObject({ current: { slot: 'a' }, previous: { slot: 'factory' }, trial: null });
    expect(inactiveSlot(committed)).toBe('b');
    const back = rollBackTrial(onTrial, 'no readings', now);
    expect(back).toMatchObject({ current: { slot: 'factory', version: '0.1.0' }, trial: null });
    expect(inactiveSlot(back)).toBe('a');
    let many: RuntimeState = back;
    for (let i = 0; i < 30; i++) many = rollBackTrial({ ...many, trial: onTrial.trial }, `try ${i}`, now);
    expect(many.outcomes).toHaveLength(20);
    expect(many.outcomes.at(-1)?.reason).toBe('try 29');
  });
});

describe('the state on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-slots-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A packaged app (0.1.0) and a data dir whose slot a holds 0.2.0 on trial. */
  async function launcherTree(): Promise<{ factory: string; data: string }> {
    const factory = path.join(dir, 'factory');
    await mkdir(factory);
    await writeFile(path.join(factory, 'package.json'), JSON.stringify({ name: 'apiary', version: '0.1.0' }));
    const data = path.join(dir, 'data');
    await mkdir(path.join(data, 'runtime', 'slots', 'a', 'dist'), { recursive: true });
    await writeFile(path.join(data, 'runtime', 'slots', 'a', 'dist', 'apiary.mjs'), '');
    writeState(path.join(data, 'runtime'), onTrial);
    return { factory, data };
  }

  it('is written whole (no temporary file left) and read back; a damaged one is refused with a clear error', async () => {
    writeState(dir, onTrial);
    expect(readState(dir)).toEqual(onTrial);
    expect(existsSync(path.join(dir, 'state.json.tmp'))).toBe(false);
    await writeFile(path.join(dir, 'state.json'), '{"format":1,"current":{"slot":"c"');
    await expectRefusal(() => readState(dir), ErrorCodes.RELEASE_INVALID, 'not JSON');
    await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...onTrial, current: { slot: 'c', version: '1' } }));
    await expectRefusal(() => readState(dir), ErrorCodes.RELEASE_INVALID);
  });

  it('switches the current link by rename, relative inside the runtime folder', () => {
    pointCurrent(dir, path.join(dir, 'slots', 'a'));
    expect(readlinkSync(path.join(dir, 'current'))).toBe('slots/a');
    pointCurrent(dir, '/usr/lib/apiary');
    expect(readlinkSync(path.join(dir, 'current'))).toBe('/usr/lib/apiary');
    expect(existsSync(path.join(dir, 'current.tmp'))).toBe(false);
  });

  it('holds one installer at a time, and takes over a lock whose holder died', async () => {
    await writeFile(path.join(dir, 'lock'), String(process.ppid));
    await expectRefusal(withLock(dir, () => 'ran'), ErrorCodes.UPDATE_BUSY, `pid ${process.ppid}`);
    await writeFile(path.join(dir, 'lock'), '999999999');
    await expect(withLock(dir, () => 'ran')).resolves.toBe('ran');
    expect(existsSync(path.join(dir, 'lock'))).toBe(false);
  });

  it('the launcher rolls back a trial that never settled itself once its window and the grace are over, and asks for a restart', async () => {
    const { factory, data } = await launcherTree();
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    const exitCode = process.exitCode;
    try {
      expect(chooseRelease(factory, data, true).ref).toEqual({ slot: 'a', version: '0.2.0' });
      expect(readState(path.join(data, 'runtime'))?.trial?.boots).toBe(1);
      vi.advanceTimersByTime(60_000 + BACKSTOP_GRACE_MS - 1);
      expect(kill).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(kill).toHaveBeenCalledWith(process.pid, 'SIGTERM');
      expect(process.exitCode).toBe(75);
      expect(readState(path.join(data, 'runtime'))).toMatchObject({ current: { slot: 'factory', version: '0.1.0' }, trial: null });
      expect(readState(path.join(data, 'runtime'))?.outcomes.at(-1)?.reason).toBe('it did not confirm it was healthy within 120 s');
      expect(readlinkSync(path.join(data, 'runtime', 'current'))).toBe(factory);
    } finally {
      process.exitCode = exitCode;
      kill.mockRestore();
      vi.useRealTimers();
    }
  });

  it('the launcher falls back to the packaged release when the state is damaged, and for commands other than start writes nothing', async () => {
    const { factory, data } = await launcherTree();
    const before = await readFile(path.join(data, 'runtime', 'state.json'), 'utf8');
    expect(chooseRelease(factory, data, false)).toEqual({ root: path.join(data, 'runtime', 'slots', 'a'), ref: { slot: 'a', version: '0.2.0' } });
    expect(await readFile(path.join(data, 'runtime', 'state.json'), 'utf8')).toBe(before);
    await writeFile(path.join(data, 'runtime', 'state.json'), 'garbage');
    expect(chooseRelease(factory, data, true)).toEqual({ root: factory, ref: { slot: 'factory', version: '0.1.0' } });
    expect(factoryState('0.1.0').current.slot).toBe('factory');
  });
});
