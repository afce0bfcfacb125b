/**
 * The shared document's budget (issue 10, finding 3) where Yjs merges
 * updates: one diff can carry a writer's flood and another writer's honest
 * edit together. The flood is refused, the honest edit taken, and nothing
 * refused is written ahead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { Counters } from '../../../runtime/counters.js';
import { SharedState } from '../../../runtime/mesh/shared-state.js';
import { SharedStateBudget } from '../../../runtime/mesh/shared-state-budget.js';

describe('shared document budget', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-state-budget-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (counters: Counters) => {
    const state = new SharedState({ dir, counters, segmentBytes: 64 * 1024, budget: new SharedStateBudget({ sharedKeys: 32, sharedBytes: 1024 * 1024 }, counters) });
    await state.start();
    return state;
  };

  it('cuts a merged update by writer: the writer past the budget is refused, the other taken, also after a restart', async () => {
    const counters = new Counters();
    const state = await open(counters);
    const flood = new Y.Doc();
    for (let i = 0; i < 100; i++) flood.getMap('notes').set(`k${i}`, i);
    const honest = new Y.Doc();
    honest.getMap('thresholds').set('swarming', 0.75);
    const merged = Y.mergeUpdates([Y.encodeStateAsUpdate(flood), Y.encodeStateAsUpdate(honest)]);
    expect(await state.applyRemote(merged, 'peer')).toBe(true);
    expect(state.get('thresholds', 'swarming')).toBe(0.75);
    expect(state.get('notes', 'k0')).toBeUndefined();
    expect(counters.get('mesh.rejected.state_keys')).toBe(1);
    // The same flood again, alone: refused whole, nothing changes.
    expect(await state.applyRemote(Y.encodeStateAsUpdate(flood), 'peer')).toBe(false);
    expect(counters.get('mesh.rejected.state_keys')).toBe(2);
    // Within the budget, the same writer is welcome.
    const small = new Y.Doc();
    small.getMap('notes').set('one', 1);
    expect(await state.applyRemote(Y.encodeStateAsUpdate(small), 'peer')).toBe(true);
    await state.stop();
    const reopened = await open(new Counters());
    expect(reopened.toJSON()).toEqual({ notes: { one: 1 }, thresholds: { swarming: 0.75 } });
    await reopened.stop();
  });
});
