import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { SharedState } from '../../../runtime/mesh/shared-state.js';

describe('SharedState', () => {
  let dir: string;
  let states: SharedState[] = [];
  const counters = new Counters();
  const open = async (name: string) => {
    const s = new SharedState({ dir: path.join(dir, name), counters, segmentBytes: 64 * 1024 });
    await s.start();
    states.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-state-'));
  });
  afterEach(async () => {
    for (const s of states) await s.stop();
    states = [];
    await rm(dir, { recursive: true, force: true });
  });

  it('merges concurrent edits the same way on both sides, sending only what the other lacks', async () => {
    const a = await open('a');
    const b = await open('b');
    await a.set('thresholds', 'swarming', 0.7);
    await b.set('thresholds', 'swarming', 0.9);
    await b.set('members', 'bbbbbbbbbbbb', { name: 'b' });
    const toB = a.diffFor(b.stateVector()) as Uint8Array;
    const toA = b.diffFor(a.stateVector()) as Uint8Array;
    expect(await b.applyRemote(toB, 'a')).toBe(true);
    expect(await a.applyRemote(toA, 'b')).toBe(true);
    expect(a.canonical()).toBe(b.canonical());
    expect(a.toJSON().members).toEqual({ bbbbbbbbbbbb: { name: 'b' } });
    // Nothing left to send either way.
    expect(a.diffFor(b.stateVector())).toBeUndefined();
    expect(b.diffFor(a.stateVector())).toBeUndefined();
    expect(await a.applyRemote(toA, 'b')).toBe(false);
  });

  it('survives a restart: edits and applied updates are on disk', async () => {
    const a = await open('a');
    await a.set('catalogue', 'hive-sound', { version: '1.0.0' });
    const before = a.canonical();
    await a.stop();
    states = [];
    const again = await open('a');
    expect(again.canonical()).toBe(before);
  });

  it('rejects and counts malformed updates without touching the document', async () => {
    const a = await open('a');
    await a.set('thresholds', 'x', 1);
    const before = a.canonical();
    expect(await a.applyRemote(Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02]), 'evil')).toBe(false);
    expect(() => a.diffFor(Buffer.from([0xff, 0xff, 0xff]))).toThrow(/state vector/);
    expect(await a.applyRemote(Buffer.alloc(300 * 1024), 'evil')).toBe(false);
    expect(counters.get('mesh.rejected.state_malformed') + counters.get('mesh.rejected.state_oversized')).toBe(2);
    expect(a.canonical()).toBe(before);
  });
});
