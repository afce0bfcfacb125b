/**
 * The stream index saved at a clean stop (runtime/core/feed-index-checkpoint.ts):
 * the next start reads only the feed entries after it, and the index is the
 * same as one rebuilt from the whole feed. A checkpoint that does not fit
 * (another parts file, a feed cut below it, a damaged file) is counted and
 * the feed is read whole, as before. Real files, the real NodeStorage over a
 * real FeedStore.
 */
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { meshIdentityIn, openOwnFeedStorage, readAll, reading, type OwnFeedStorage } from '../../support/own-feed-storage.js';

const CHECKPOINT = ['streams', 'feed-index-checkpoint.json'];

describe('the stream index checkpoint', () => {
  let dir: string;
  let identity: MeshIdentity;
  const open = (dataDir: string) => openOwnFeedStorage(dataDir, identity);
  /** Readings in plain and decisions sealed, with an entry of no stream between them. */
  async function write(node: OwnFeedStorage, from: number, to: number): Promise<void> {
    for (let i = from; i < to; i++) {
      await node.storage.appendToFeed('readings', reading(i), (body) => node.append('reading', body));
      if (i % 3 === 0) await node.storage.appendToFeed('decisions', { rule: 'r', active: i % 2 === 0, t: i }, (body) => node.appendSealed('decision', body), { sealed: true });
      if (i % 5 === 0) await node.append('task-offer', { task: `t${i}` });
    }
  }
  const expectedReadings = (n: number) => Array.from({ length: n }, (_, i) => ({ seq: i, body: reading(i) }));
  const expectedDecisions = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 0).map((i, k) => ({ seq: k, body: { rule: 'r', active: i % 2 === 0, t: i } }));
  async function expectStreams(node: OwnFeedStorage, n: number): Promise<void> {
    expect(await readAll(node.storage, 'readings')).toEqual(expectedReadings(n));
    expect(await readAll(node.storage, 'decisions')).toEqual(expectedDecisions(n));
    expect((await node.storage.stream('readings')).stats()).toMatchObject({ firstSeq: 0, nextSeq: n, inFeed: { records: n } });
  }
  const counter = (node: OwnFeedStorage, name: string) => node.counters.get(`storage.feed_index.${name}`);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-index-checkpoint-'));
    identity = await meshIdentityIn(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('after a clean stop, a start reads no entry of the feed and has the same index', async () => {
    const dataDir = path.join(dir, 'clean');
    const first = await open(dataDir);
    await write(first, 0, 30);
    const bytes = (await first.storage.stream('readings')).stats().inFeed?.bytes;
    await first.close();
    const again = await open(dataDir);
    await expectStreams(again, 30);
    expect(counter(again, 'checkpoint_used')).toBe(1);
    expect(counter(again, 'entries_read')).toBe(0);
    expect((await again.storage.stream('readings')).stats().inFeed?.bytes).toBe(bytes);
    // It goes on from there: more records, a new part (a stream's first sealed record), another clean stop.
    await write(again, 30, 40);
    await again.close();
    const third = await open(dataDir);
    await expectStreams(third, 40);
    expect(counter(third, 'entries_read')).toBe(0);
    await third.close();
  });

  it('after a crash, the last checkpoint is a prefix: only what came after it is read', async () => {
    const dataDir = path.join(dir, 'crash');
    const first = await open(dataDir);
    await write(first, 0, 20);
    await first.close();
    const second = await open(dataDir);
    await write(second, 20, 26); // the same parts go on: the parts files do not change
    const crashed = path.join(dir, 'crash-copy');
    await cp(dataDir, crashed, { recursive: true }); // what a kill -9 leaves
    await second.close();
    const restarted = await open(crashed);
    await expectStreams(restarted, 26);
    expect(counter(restarted, 'checkpoint_used')).toBe(1);
    // After the checkpoint: readings 20-25, decisions 21 and 24, other entries 20 and 25.
    expect(counter(restarted, 'entries_read')).toBe(10);
    await restarted.close();
  });

  it('is not used when it does not fit: other parts files, a feed cut below it, a damaged file', async () => {
    const base = path.join(dir, 'unfit');
    const node = await open(base);
    await write(node, 0, 12);
    await node.close();
    const all = (await readFile(path.join(base, ...CHECKPOINT), 'utf8'));
    const checkpoint = JSON.parse(all) as { head: { seq: number }; streams: Record<string, { seqDeltas: number[] }[]> };

    const cases: [string, string, (copy: string) => Promise<void>][] = [
      ['a part the checkpoint does not know (an older release ran)', 'stale', async (copy) => {
        const file = path.join(copy, 'streams', 'feed-parts.json');
        const parts = JSON.parse(await readFile(file, 'utf8')) as { streams: Record<string, unknown[]> };
        parts.streams['models.hive-sound'] = [{ base: 0, fromFeedSeq: checkpoint.head.seq + 1 }];
        await writeFile(file, JSON.stringify(parts));
      }],
      ['the feed cut below its head', 'stale', async (copy) => {
        const feeds = path.join(copy, 'mesh', 'feeds', identity.node.nodeId);
        const segment = path.join(feeds, '00000000000000000000.seg');
        const size = Buffer.byteLength(await readFile(segment, 'latin1'), 'latin1');
        await truncate(segment, size - 10);
      }],
      ['another entry at its head (the feed cut, then written again)', 'stale', async (copy) => {
        const feeds = path.join(copy, 'mesh', 'feeds', identity.node.nodeId);
        const segment = path.join(feeds, '00000000000000000000.seg');
        await truncate(segment, Buffer.byteLength(await readFile(segment, 'latin1'), 'latin1') - 10);
        const between = await open(copy);
        await between.storage.appendToFeed('readings', reading(11), (body) => between.append('reading', { ...(body as object), note: 'rewritten' }));
        await between.close();
        await writeFile(path.join(copy, ...CHECKPOINT), all); // the checkpoint of before the cut
      }],
      ['not JSON', 'invalid', (copy) => writeFile(path.join(copy, ...CHECKPOINT), '{"version":1,')],
      ['a record after its head', 'invalid', (copy) => {
        const bad = structuredClone(checkpoint);
        bad.streams.readings?.[0]?.seqDeltas.push(1000);
        return writeFile(path.join(copy, ...CHECKPOINT), JSON.stringify({ ...bad, streams: { ...bad.streams, readings: bad.streams.readings?.map((p) => ({ ...p, sizes: [...(p as unknown as { sizes: number[] }).sizes, 100] })) } }));
      }],
      ['two records at one seq', 'invalid', (copy) => {
        const bad = structuredClone(checkpoint);
        const deltas = bad.streams.readings?.[0]?.seqDeltas;
        if (deltas) deltas[3] = 0;
        return writeFile(path.join(copy, ...CHECKPOINT), JSON.stringify(bad));
      }],
    ];
    for (const [label, refused, damage] of cases) {
      const copy = path.join(dir, `unfit-${refused}-${label.length}`);
      await cp(base, copy, { recursive: true });
      await damage(copy);
      const restarted = await open(copy);
      const whole = label.startsWith('the feed cut') ? 11 : 12; // the cut takes the last entry (a reading)
      const readings = await readAll(restarted.storage, 'readings');
      if (label.startsWith('another entry')) expect(readings.at(-1)?.body, label).toMatchObject({ note: 'rewritten' });
      else expect(readings, label).toEqual(expectedReadings(whole));
      expect(restarted.counters.get(`storage.feed_index.checkpoint_${refused}`), label).toBe(1);
      expect(counter(restarted, 'checkpoint_used'), label).toBe(0);
      expect(counter(restarted, 'entries_read'), label).toBeGreaterThanOrEqual(whole);
      await restarted.close();
    }
  });
});
