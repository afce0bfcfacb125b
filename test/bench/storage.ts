/**
 * Storage section: what a sealed stream (`mesh.private`, decisions kept to
 * the node) costs to read back against one shared in plain, both written
 * once into the own feed (issue 16). In-process, on real files: the real
 * NodeStorage over a real FeedStore, entries sealed as the mesh seals them.
 *
 * Per round, for each kind: open the storage and index the feed (what every
 * start does before the first record is stored), from the checkpoint a clean
 * stop leaves and, as after a crash, without one (the whole feed read); then
 * read the thermal model's window back (the newest `window` records, as the
 * hive does at start). And per box: opening one with the node's own key against the
 * X25519 path every recipient (and an older release's box) takes.
 */
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { openOwnBox, openSealedBox, sealForRecipients } from '../../runtime/mesh/private-box.js';
import { legacySeal, meshIdentityIn, openOwnFeedStorage, reading } from '../support/own-feed-storage.js';

export interface StoragePlan {
  /** Records in each stream. */
  readonly records: number;
  /** Newest records read back per round (the thermal window at the default 5 min interval, x4 channels: 24 h). */
  readonly window: number;
  readonly rounds: number;
  /** Boxes opened per round for the per-box rows. */
  readonly boxes: number;
}

export const STORAGE_FULL: StoragePlan = { records: 6000, window: 1152, rounds: 5, boxes: 2000 };
export const STORAGE_QUICK: StoragePlan = { records: 1500, window: 1152, rounds: 3, boxes: 500 };

export interface StorageResults {
  readonly plan: StoragePlan;
  /** ms per round: open + index (from the checkpoint, and without one), and the window read, per kind. */
  readonly plain: { openMs: number[]; rebuildMs: number[]; windowMs: number[] };
  readonly sealed: { openMs: number[]; rebuildMs: number[]; windowMs: number[] };
  /** µs per box, per round. */
  readonly ownBoxUs: number[];
  readonly x25519BoxUs: number[];
  readonly bytesPerRecord: { plain: number; sealed: number };
}

const CONTEXT = 'apiary-feed-entry';

export async function measureStorage(tmp: string, plan: StoragePlan, progress: (line: string) => void): Promise<StorageResults> {
  const dir = await mkdtemp(path.join(tmp, 'storage-'));
  try {
    const identity = await meshIdentityIn(dir);
    const dirs = { plain: path.join(dir, 'plain'), sealed: path.join(dir, 'sealed') };
    const bytesPerRecord = { plain: 0, sealed: 0 };
    for (const kind of ['plain', 'sealed'] as const) {
      progress(`storage: writing ${plan.records} ${kind} readings`);
      const node = await openOwnFeedStorage(dirs[kind], identity);
      for (let i = 0; i < plan.records; i += 1) {
        if (kind === 'plain') await node.storage.appendToFeed('readings', reading(i), (body) => node.append('reading', body));
        else await node.storage.appendToFeed('readings', reading(i), (body) => node.appendSealed('reading', body), { sealed: true });
      }
      bytesPerRecord[kind] = ((await node.storage.stream('readings')).stats().inFeed?.bytes ?? Number.NaN) / plan.records;
      await node.close();
    }
    const results: StorageResults = { plan, plain: { openMs: [], rebuildMs: [], windowMs: [] }, sealed: { openMs: [], rebuildMs: [], windowMs: [] }, ownBoxUs: [], x25519BoxUs: [], bytesPerRecord };
    for (let r = 0; r < plan.rounds; r += 1) {
      // Who goes first alternates, so a warming cache favours neither.
      for (const kind of r % 2 === 0 ? (['plain', 'sealed'] as const) : (['sealed', 'plain'] as const)) {
        let t0 = performance.now();
        const withCheckpoint = await openOwnFeedStorage(dirs[kind], identity);
        await withCheckpoint.storage.stream('readings');
        results[kind].openMs.push(performance.now() - t0);
        await withCheckpoint.close();
        await unlink(path.join(dirs[kind], 'streams', 'feed-index-checkpoint.json')); // as a kill -9 leaves it: no checkpoint of this run
        t0 = performance.now();
        const node = await openOwnFeedStorage(dirs[kind], identity);
        const stream = await node.storage.stream('readings');
        const t1 = performance.now();
        let read = 0;
        for await (const record of stream.read(stream.stats().nextSeq - plan.window)) read += record.payload.length > 0 ? 1 : 0;
        const t2 = performance.now();
        await node.close();
        if (read !== plan.window) throw new Error(`storage bench: read ${read} of ${plan.window} ${kind} records`);
        results[kind].rebuildMs.push(t1 - t0);
        results[kind].windowMs.push(t2 - t1);
      }
    }
    const me = { nodeId: identity.node.nodeId, box: identity.box };
    const plaintext = Buffer.from(JSON.stringify({ type: 'reading', body: reading(1) }));
    const binding = (i: number) => JSON.stringify([me.nodeId, i]);
    const own = Array.from({ length: plan.boxes }, (_, i) => sealForRecipients(plaintext, { ...identity.box, nodeId: me.nodeId }, [], CONTEXT, binding(i)));
    const legacy = Array.from({ length: plan.boxes }, (_, i) => legacySeal(plaintext, me, [], CONTEXT, binding(i)));
    for (let r = 0; r < plan.rounds; r += 1) {
      let t = performance.now();
      own.forEach((box, i) => { if (!openOwnBox(box, me, CONTEXT, binding(i))) throw new Error('storage bench: an own box did not open'); });
      results.ownBoxUs.push(((performance.now() - t) * 1000) / plan.boxes);
      t = performance.now();
      legacy.forEach((box, i) => openSealedBox(box, me, CONTEXT, binding(i)));
      results.x25519BoxUs.push(((performance.now() - t) * 1000) / plan.boxes);
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
