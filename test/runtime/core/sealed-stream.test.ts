/**
 * One write path for sealed streams (issue 16): a stream sealed for
 * recipients (`mesh.private`, or decisions kept to this node) is written
 * once, as a private entry of the node's own feed, and read back with the
 * node's own content key. Real files: the real NodeStorage over a real
 * FeedStore, entries sealed as the mesh seals them.
 *
 * - the record is on disk once (the stream's log holds nothing), reads back
 *   the same after a restart, and is still a box its recipients open;
 * - private entries that are not the stream's (tasks, a box of an older
 *   release) are never read as its records;
 * - a crash at every point of a write restarts to exactly the whole entries;
 * - a release from before sealed parts, run on the data dir after a rollback
 *   (also after a kill -9), still reads `feed-parts.json`, numbers its own
 *   records after every sealed seq, and after rolling forward again every
 *   record is there once, in seq order;
 * - a data dir where a sealed stream was kept twice (log + box) migrates
 *   without a record read twice.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEALED_LOG_LEAD } from '../../../runtime/core/node-storage.js';
import { Counters } from '../../../runtime/counters.js';
import { encodeEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import type { FeedStore } from '../../../runtime/mesh/feed-store.js';
import type { MeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { openPrivateEntry } from '../../../runtime/mesh/private-entries.js';
import { FRAME_HEADER_BYTES } from '../../../runtime/storage/record-frame.js';
import { SegmentLog } from '../../../runtime/storage/segment-log.js';
import { meshIdentityIn, openOwnFeedStorage, reading, readAll, type OwnFeedStorage } from '../../support/own-feed-storage.js';



const expected = (from: number, to: number, seqOf = (i: number) => i) => Array.from({ length: to - from }, (_, k) => ({ seq: seqOf(from + k), body: reading(from + k) }));

/** Records of the stream's own log, read as a release that knows no sealed parts reads them. */
async function logRecords(dataDir: string, name: string): Promise<{ seqs: number[]; nextSeq: number }> {
  const log = new SegmentLog({ dir: path.join(dataDir, 'streams', name), name, segmentBytes: 1024 * 1024, maxBytes: 64 * 1024 * 1024 });
  await log.open();
  const seqs: number[] = [];
  for await (const record of log.read(0)) seqs.push(record.seq);
  const { nextSeq } = log.stats();
  await log.close();
  return { seqs, nextSeq };
}

async function lastSegment(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
  return path.join(dir, names.at(-1) ?? '');
}

describe('one write path for sealed streams: private entries of the own feed, indexed', () => {
  let dir: string;
  let identity: MeshIdentity;
  const open = (dataDir: string, options?: { mesh?: boolean }) => openOwnFeedStorage(dataDir, identity, options);
  const writeSealed = (node: OwnFeedStorage, i: number) => node.storage.appendToFeed('readings', reading(i), (body) => node.appendSealed('reading', body), { sealed: true });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sealed-stream-'));
    identity = await meshIdentityIn(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a sealed record once, reads it back by the own key, and its recipients still open the box', async () => {
    const dataDir = path.join(dir, 'once');
    const node = await open(dataDir);
    const entries: FeedEntry[] = [];
    for (let i = 0; i < 10; i++) {
      entries.push(await writeSealed(node, i));
      // Between them: private entries that are not the stream's (a task award; a reading box of an older release).
      if (i === 3) await node.appendSealed('task-award', { task: 't1' });
      if (i === 6) await node.appendLegacySealed('reading', reading(1000));
    }
    await node.storage.appendToFeed('decisions', { rule: 'r', active: true, t: 1 }, (body) => node.appendSealed('decision', body), { sealed: true });
    expect(await readAll(node.storage, 'readings')).toEqual(expected(0, 10));
    expect((await node.storage.stream('readings')).stats()).toMatchObject({ firstSeq: 0, nextSeq: 10, inFeed: { records: 10 } });
    expect(await readAll(node.storage, 'decisions')).toEqual([{ seq: 0, body: { rule: 'r', active: true, t: 1 } }]);
    // A read from the middle, as a binary search does it.
    const middle = [];
    for await (const record of (await node.storage.stream('readings')).read(7, 2)) middle.push(record.seq);
    expect(middle).toEqual([7, 8]);
    // What the feed carries is a box: no plaintext, and it opens by the recipients' path (X25519) too.
    const entry = entries[4] as FeedEntry;
    expect(entry.body).not.toContain('temperature');
    expect(openPrivateEntry(entry, identity, new Counters())).toMatchObject({ type: 'reading', body: reading(4) });
    await node.close();

    // On disk once: the stream's own log holds no record (an empty segment, moved on ahead of the sealed part).
    const own = await logRecords(dataDir, 'readings');
    expect(own.seqs).toEqual([]);
    expect(own.nextSeq).toBeGreaterThanOrEqual(10);
    expect((await stat(await lastSegment(path.join(dataDir, 'streams', 'readings')))).size).toBe(0);
    // feed-parts.json (read by older releases) names no sealed part; sealed-parts.json does.
    const plain = JSON.parse(await readFile(path.join(dataDir, 'streams', 'feed-parts.json'), 'utf8').catch(() => '{"streams":{}}')) as { streams: Record<string, unknown> };
    expect(plain.streams).toEqual({});
    const sealed = JSON.parse(await readFile(path.join(dataDir, 'streams', 'sealed-parts.json'), 'utf8')) as { streams: Record<string, unknown> };
    expect(Object.keys(sealed.streams).sort()).toEqual(['decisions', 'readings']);

    // Restarted: rebuilt from the feed, the same records at the same seqs, and it carries on.
    const again = await open(dataDir);
    expect(await readAll(again.storage, 'readings')).toEqual(expected(0, 10));
    await writeSealed(again, 10);
    expect(await readAll(again.storage, 'readings')).toEqual(expected(0, 11));
    await again.close();
  });

  it('recovers after a crash at every point of a sealed write', async () => {
    const base = path.join(dir, 'crash-base');
    const node = await open(base);
    for (let i = 0; i < 4; i++) await writeSealed(node, i);
    await node.close();
    const segment = path.relative(base, await lastSegment(path.join(base, 'mesh', 'feeds', identity.node.nodeId)));
    const full = (await stat(path.join(base, segment))).size;
    const reopened = await open(base);
    let last: FeedEntry | undefined;
    for await (const entry of (reopened.store as FeedStore).read(identity.node.nodeId, 4)) last = entry;
    await reopened.close();
    const lastFrame = encodeEntry(last as FeedEntry).length + FRAME_HEADER_BYTES;

    // The last box torn at every 7th byte and at both ends: 3 records (4 when whole), never a box half read.
    const cuts = new Set([full - lastFrame, full - lastFrame + 1, full - 1, full]);
    for (let cut = full - lastFrame; cut < full; cut += 7) cuts.add(cut);
    for (const cut of cuts) {
      const copy = path.join(dir, `crash-${cut}`);
      await cp(base, copy, { recursive: true });
      await truncate(path.join(copy, segment), cut);
      const restarted = await open(copy);
      const whole = cut === full ? 4 : 3;
      expect(await readAll(restarted.storage, 'readings')).toEqual(expected(0, whole));
      await writeSealed(restarted, 99);
      expect((await readAll(restarted.storage, 'readings')).map((r) => r.seq)).toEqual(Array.from({ length: whole + 1 }, (_, i) => i));
      await restarted.close();
      await rm(copy, { recursive: true, force: true });
    }

    // sealed-parts.json half-written (a temp file beside it), then a part started with no entry after it.
    const parts = path.join(base, 'streams', 'sealed-parts.json');
    await writeFile(`${parts}.tmp-0123456789abcdef`, '{"version":1,"origin":"trunc');
    const afterTemp = await open(base);
    expect(await readAll(afterTemp.storage, 'readings')).toEqual(expected(0, 4));
    await afterTemp.storage.appendToFeed('decisions', { rule: 'r', active: true, t: 1 }, () => Promise.reject(new Error('killed before the entry was written')), { sealed: true })
      .then(() => expect.fail('the append should fail'), (err: unknown) => expect(String(err)).toMatch(/killed/));
    await afterTemp.close();
    const afterEmptyPart = await open(base);
    expect(await readAll(afterEmptyPart.storage, 'decisions')).toEqual([]);
    await afterEmptyPart.storage.appendToFeed('decisions', { rule: 'r', active: true, t: 2 }, (body) => afterEmptyPart.appendSealed('decision', body), { sealed: true });
    expect(await readAll(afterEmptyPart.storage, 'decisions')).toEqual([{ seq: 0, body: { rule: 'r', active: true, t: 2 } }]);
    await afterEmptyPart.close();
  });

  it('survives a rollback to a release before sealed parts, also one after a kill -9, and rolling forward again', async () => {
    const dataDir = path.join(dir, 'rollback');
    const node = await open(dataDir);
    for (let i = 0; i < 5; i++) await writeSealed(node, i);
    // kill -9 now: what is on disk is what a copy taken while the node runs holds (every write reached the OS).
    const killed = path.join(dir, 'rollback-killed');
    await cp(dataDir, killed, { recursive: true });
    await node.close();

    for (const data of [dataDir, killed]) {
      // The older release: feed-parts.json is as it knows it, and its log goes on after every sealed seq.
      const parts = await readFile(path.join(data, 'streams', 'feed-parts.json'), 'utf8').catch(() => undefined);
      if (parts !== undefined) expect(Object.keys((JSON.parse(parts) as { streams: object }).streams)).toEqual([]);
      const before = await logRecords(data, 'readings');
      expect(before.seqs).toEqual([]);
      expect(before.nextSeq).toBeGreaterThanOrEqual(5);

      // It writes as it did: the plaintext in the log, and a box (with a random key) in the feed.
      const old = await open(data);
      const log = new SegmentLog({ dir: path.join(data, 'streams', 'readings'), name: 'readings', segmentBytes: 1024 * 1024, maxBytes: 64 * 1024 * 1024 });
      await log.open();
      const oldSeqs: number[] = [];
      for (let i = 5; i < 8; i++) {
        oldSeqs.push(await log.append(Buffer.from(JSON.stringify(reading(i)))));
        await old.appendLegacySealed('reading', reading(i));
      }
      await log.close();
      await old.close();
      expect(Math.min(...oldSeqs)).toBeGreaterThanOrEqual(5);

      // Rolled forward: every record once, in seq order; the older release's boxes are not read twice.
      const forward = await open(data);
      await writeSealed(forward, 8);
      const all = await readAll(forward.storage, 'readings');
      expect(all.map((r) => r.body)).toEqual(Array.from({ length: 9 }, (_, i) => reading(i)));
      expect(all.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, ...oldSeqs, (oldSeqs.at(-1) as number) + 1]);
      await forward.close();
    }
  });

  it('with the mesh off a sealed stream goes on in its log, after every sealed seq; on again, each record once', async () => {
    const dataDir = path.join(dir, 'offline');
    const node = await open(dataDir);
    for (let i = 0; i < 3; i++) await writeSealed(node, i);
    await node.close();
    const offline = await open(dataDir, { mesh: false });
    const seq = await offline.storage.append('readings', reading(3));
    expect(seq).toBeGreaterThanOrEqual(3);
    await offline.close();
    const back = await open(dataDir);
    await writeSealed(back, 4);
    const all = await readAll(back.storage, 'readings');
    expect(all.map((r) => r.body)).toEqual(Array.from({ length: 5 }, (_, i) => reading(i)));
    expect(all.map((r) => r.seq)).toEqual([0, 1, 2, seq, seq + 1]);
    // The stream's last records are what readers of "the most recent" ask for: nextSeq is after them, not after the log's lead.
    expect((await back.storage.stream('readings')).stats().nextSeq).toBe(seq + 2);
    await back.close();
  });

  it('migrates a sealed stream kept twice (log + box of an older release): each record once', async () => {
    const dataDir = path.join(dir, 'old-layout');
    const old = await open(dataDir);
    const log = new SegmentLog({ dir: path.join(dataDir, 'streams', 'readings'), name: 'readings', segmentBytes: 1024, maxBytes: 1024 * 1024 });
    await log.open();
    for (let i = 0; i < 6; i++) {
      await log.append(Buffer.from(JSON.stringify(reading(i))));
      await old.appendLegacySealed('reading', reading(i));
    }
    await log.close();
    await old.close();

    const node = await open(dataDir);
    expect(await readAll(node.storage, 'readings')).toEqual(expected(0, 6));
    for (let i = 6; i < 9; i++) await writeSealed(node, i);
    expect(await readAll(node.storage, 'readings')).toEqual(expected(0, 9));
    expect((await node.storage.stream('readings')).stats()).toMatchObject({ firstSeq: 0, nextSeq: 9, inFeed: { records: 3 } });
    await node.close();
    const again = await open(dataDir);
    expect(await readAll(again.storage, 'readings')).toEqual(expected(0, 9));
    await again.close();
    // The lead is bounded: the log was moved on once, by at most SEALED_LOG_LEAD seqs.
    expect((await logRecords(dataDir, 'readings')).nextSeq).toBeLessThanOrEqual(6 + SEALED_LOG_LEAD);
  });
});
