/**
 * One write path (issue 16): a shared record is written once, as an entry of
 * the node's own feed, and its stream is an index over the feed. Real files:
 * a real FeedStore holding this node's signed feed, the real NodeStorage.
 *
 * - the stream reads back what was written, with contiguous seqs, and its own
 *   log stays empty;
 * - a crash at every point of a write (the parts file half-written, written
 *   with no entry after it, the entry torn at every byte, whole but not
 *   synced) restarts to a stream of exactly the whole entries, counted;
 * - a data dir of the old layout (each shared record in its stream's log AND
 *   in the feed) reads the same afterwards, nothing twice, nothing lost; and
 *   the mesh turned off later does not make a seq be used twice.
 */
import { cp, mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import type { MeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { FRAME_HEADER_BYTES } from '../../../runtime/storage/record-frame.js';
import { SegmentLog } from '../../../runtime/storage/segment-log.js';
import { meshIdentityIn, openOwnFeedStorage, reading, readAll } from '../../support/own-feed-storage.js';

const openNode = (dataDir: string, identity: MeshIdentity, options?: { mesh?: boolean }) => openOwnFeedStorage(dataDir, identity, options);


const feedDir = (dataDir: string, identity: MeshIdentity) => path.join(dataDir, 'mesh', 'feeds', identity.node.nodeId);

async function lastSegment(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
  return path.join(dir, names.at(-1) ?? '');
}

describe('one write path: shared records live in the own feed, streams index it', () => {
  let dir: string;
  let identity: MeshIdentity;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-one-write-'));
    identity = await meshIdentityIn(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a shared record once, into the feed, and reads it back through its stream', async () => {
    const dataDir = path.join(dir, 'once');
    const node = await openNode(dataDir, identity);
    for (let i = 0; i < 10; i++) await node.storage.appendToFeed('readings', reading(i), (body) => node.append('reading', body));
    await node.append('task-award', { unrelated: true }); // other entries of the feed are not the stream's
    await node.storage.appendToFeed('models.hive-sound', { model: 'hive-sound', label: 'normal', t: 1 }, (body) => node.append('model', body));
    const stats = (await node.storage.stream('readings')).stats();
    expect(stats).toMatchObject({ firstSeq: 0, nextSeq: 10, inFeed: { records: 10 } });
    expect(await readAll(node.storage, 'readings')).toEqual(Array.from({ length: 10 }, (_, i) => ({ seq: i, body: reading(i) })));
    expect((await readAll(node.storage, 'models.hive-sound')).map((r) => r.seq)).toEqual([0]);
    // A read from the middle, as a binary search does it.
    const stream = await node.storage.stream('readings');
    const one = [];
    for await (const record of stream.read(7, 1)) one.push(record.seq);
    expect(one).toEqual([7]);
    await node.close();
    // The stream's own log got nothing: the record exists once on disk.
    const own = path.join(dataDir, 'streams', 'readings');
    expect((await stat(await lastSegment(own))).size).toBe(0);
    // Restarted: the index is rebuilt from the feed, the same records at the same seqs.
    const again = await openNode(dataDir, identity);
    expect(await readAll(again.storage, 'readings')).toEqual(Array.from({ length: 10 }, (_, i) => ({ seq: i, body: reading(i) })));
    await again.close();
  });

  it('recovers after a crash at every point of a write', async () => {
    const base = path.join(dir, 'crash-base');
    const node = await openNode(base, identity);
    for (let i = 0; i < 5; i++) await node.storage.appendToFeed('readings', reading(i), (body) => node.append('reading', body));
    await node.close();
    const segment = path.relative(base, await lastSegment(feedDir(base, identity)));
    const full = (await stat(path.join(base, segment))).size;
    const lastFrame = encodeEntry((await (async () => {
      const reopened = await openNode(base, identity);
      let last: FeedEntry | undefined;
      for await (const entry of (reopened.store as FeedStore).read(identity.node.nodeId, 5)) last = entry;
      await reopened.close();
      return last as FeedEntry;
    })())).length + FRAME_HEADER_BYTES;

    // The last entry torn at every byte (a power cut; a kill -9 leaves whole writes): 4 records, the torn one counted.
    for (let cut = full - lastFrame; cut <= full; cut++) {
      const copy = path.join(dir, `crash-${cut}`);
      await cp(base, copy, { recursive: true });
      await truncate(path.join(copy, segment), cut);
      const restarted = await openNode(copy, identity);
      const whole = cut === full ? 5 : 4;
      const records = await readAll(restarted.storage, 'readings');
      expect(records).toEqual(Array.from({ length: whole }, (_, i) => ({ seq: i, body: reading(i) })));
      expect(restarted.counters.get(`storage.feed.${identity.node.nodeId}.dropped_corrupt`)).toBe(cut === full || cut === full - lastFrame ? 0 : 1);
      // And it carries on: the next record follows the last whole one.
      await restarted.storage.appendToFeed('readings', reading(99), (body) => restarted.append('reading', body));
      expect((await readAll(restarted.storage, 'readings')).map((r) => r.seq)).toEqual(Array.from({ length: whole + 1 }, (_, i) => i));
      await restarted.close();
      await rm(copy, { recursive: true, force: true });
    }

    // The parts file half-written (a temp file left, the old one in place) or written with no entry after it.
    const parts = path.join(base, 'streams', 'feed-parts.json');
    await writeFile(`${parts}.tmp-0123456789abcdef`, '{"version":1,"origin":"trunc');
    const afterTemp = await openNode(base, identity);
    expect((await readAll(afterTemp.storage, 'readings')).map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    await afterTemp.storage.appendToFeed('decisions', { rule: 'r', active: true, t: 1 }, () => Promise.reject(new Error('killed before the entry was written')))
      .then(() => expect.fail('the append should fail'), (err: unknown) => expect(String(err)).toMatch(/killed/));
    await afterTemp.close();
    const afterEmptyPart = await openNode(base, identity);
    expect(await readAll(afterEmptyPart.storage, 'decisions')).toEqual([]);
    await afterEmptyPart.storage.appendToFeed('decisions', { rule: 'r', active: true, t: 2 }, (body) => afterEmptyPart.append('decision', body));
    expect(await readAll(afterEmptyPart.storage, 'decisions')).toEqual([{ seq: 0, body: { rule: 'r', active: true, t: 2 } }]);
    await afterEmptyPart.close();
  });

  it('migrates a data dir of the old layout: its records read the same, none twice, none lost', async () => {
    const dataDir = path.join(dir, 'old-layout');
    // What the code before issue 16 left: each shared record in its stream's own log AND in the feed.
    const counters = new Counters();
    const logs = { readings: 12, decisions: 3 };
    const store = new FeedStore({ dir: path.join(dataDir, 'mesh', 'feeds'), counters, segmentBytes: 1024 * 1024, maxBytesPerOrigin: 16 * 1024 * 1024, self: identity.node.nodeId });
    await store.open();
    let prev: string | null = null;
    let seq = 0;
    for (const [name, count] of Object.entries(logs)) {
      const log = new SegmentLog({ dir: path.join(dataDir, 'streams', name), name, segmentBytes: 1024, maxBytes: 1024 * 1024 });
      await log.open();
      for (let i = 0; i < count; i++) {
        const body = name === 'readings' ? reading(i) : { rule: 'old', active: i % 2 === 0, t: i };
        await log.append(Buffer.from(JSON.stringify(body)));
        const entry = signEntry(identity.node, { seq: ++seq, prev, hlc: { l: Date.now(), c: 0 }, type: name.replace(/s$/, ''), body });
        expect(await store.apply(entry)).toBe('applied');
        prev = entryHash(entry);
      }
      await log.close();
    }
    await store.close();

    const node = await openNode(dataDir, identity);
    const old = await readAll(node.storage, 'readings');
    expect(old).toEqual(Array.from({ length: 12 }, (_, i) => ({ seq: i, body: reading(i) })));
    for (let i = 12; i < 20; i++) await node.storage.appendToFeed('readings', reading(i), (body) => node.append('reading', body));
    const expected = Array.from({ length: 20 }, (_, i) => ({ seq: i, body: reading(i) }));
    expect(await readAll(node.storage, 'readings')).toEqual(expected);
    expect((await node.storage.stream('readings')).stats()).toMatchObject({ firstSeq: 0, nextSeq: 20, inFeed: { records: 8 } });
    expect((await readAll(node.storage, 'decisions')).length).toBe(3);
    await node.close();

    const again = await openNode(dataDir, identity);
    expect(await readAll(again.storage, 'readings')).toEqual(expected);
    await again.close();

    // The mesh turned off: the stream's own log goes on after every seq the feed could hold for it.
    const offline = await openNode(dataDir, identity, { mesh: false });
    const seqOffline = await offline.storage.append('readings', reading(20));
    expect(seqOffline).toBeGreaterThanOrEqual(20);
    expect((await readAll(offline.storage, 'readings')).map((r) => r.seq)).toEqual([...Array.from({ length: 12 }, (_, i) => i), seqOffline]);
    await offline.close();
    // And on again: everything, in seq order, each once.
    const back = await openNode(dataDir, identity);
    await back.storage.appendToFeed('readings', reading(21), (body) => back.append('reading', body));
    const all = await readAll(back.storage, 'readings');
    expect(all.map((r) => (r.body as { t: number }).t)).toEqual(Array.from({ length: 22 }, (_, i) => reading(i).t));
    expect(all.map((r) => r.seq)).toEqual([...all.map((r) => r.seq)].sort((a, b) => a - b));
    expect(new Set(all.map((r) => r.seq)).size).toBe(22);
    await back.close();
  });
});
