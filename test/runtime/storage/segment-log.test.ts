import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { encodeRecord, FRAME_HEADER_BYTES, MAX_RECORD_BYTES } from '../../../runtime/storage/record-frame.js';
import { SegmentLog, segmentFileName, type SegmentLogOptions } from '../../../runtime/storage/segment-log.js';
import type { StoredRecord } from '../../../runtime/storage/stream-store.js';

/** 92-byte payloads make 100-byte frames, so segment arithmetic is exact. */
const FRAME = 100;
const payload = (i: number) => Buffer.from(`rec-${String(i).padStart(6, '0')}`.padEnd(FRAME - FRAME_HEADER_BYTES, '.'));

let dir: string;
let logs: SegmentLog[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-segment-log-'));
  logs = [];
});

afterEach(async () => {
  for (const log of logs) await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function openLog(options: Partial<SegmentLogOptions> = {}): Promise<SegmentLog> {
  const log = new SegmentLog({ dir: path.join(dir, 'readings'), name: 'readings', segmentBytes: 1000, maxBytes: 1_000_000, ...options });
  logs.push(log);
  await log.open();
  return log;
}

async function collect(iterable: AsyncIterable<StoredRecord>): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const record of iterable) out.push(record);
  return out;
}

async function appendRange(log: SegmentLog, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) expect(await log.append(payload(i))).toBe(i);
}

const segFiles = async () => (await readdir(path.join(dir, 'readings'))).filter((n) => n.endsWith('.seg')).sort();
const segPath = (firstSeq: number) => path.join(dir, 'readings', segmentFileName(firstSeq));

describe('SegmentLog', () => {
  it('creates its directory and appends and reads back in seq order', async () => {
    const log = await openLog();
    await appendRange(log, 0, 5);
    const records = await collect(log.read());
    expect(records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(records.map((r) => r.payload)).toEqual([0, 1, 2, 3, 4].map(payload));
    expect((await collect(log.read(2, 2))).map((r) => r.seq)).toEqual([2, 3]);
    expect(await collect(log.read(5))).toEqual([]);
    expect(log.stats()).toEqual({ name: 'readings', bytes: 5 * FRAME, segments: 1, firstSeq: 0, nextSeq: 5, droppedByRetention: 0, droppedCorrupt: 0, droppedCorruptBytes: 0 });
  });

  it('rotates into several segments named by their first seq and reads across them', async () => {
    const log = await openLog({ segmentBytes: 1000 });
    await appendRange(log, 0, 25);
    expect(await segFiles()).toEqual([segmentFileName(0), segmentFileName(10), segmentFileName(20)]);
    expect((await stat(segPath(0))).size).toBe(1000);
    expect((await stat(segPath(20))).size).toBe(500);
    expect(log.stats()).toMatchObject({ segments: 3, bytes: 2500, nextSeq: 25 });
    const records = await collect(log.read(8, 5));
    expect(records.map((r) => r.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(records.map((r) => r.payload)).toEqual([8, 9, 10, 11, 12].map(payload));
  });

  it('deletes the oldest whole segments past maxBytes and counts the records exactly', async () => {
    const counters = new Counters();
    const log = await openLog({ segmentBytes: 1000, maxBytes: 2500, counters });
    await appendRange(log, 0, 50);
    // Over 2500 bytes at seqs 25, 35 and 45: segments 0, 10 and 20 go, 10 records each.
    expect(await segFiles()).toEqual([segmentFileName(30), segmentFileName(40)]);
    expect(log.stats()).toEqual({ name: 'readings', bytes: 2000, segments: 2, firstSeq: 30, nextSeq: 50, droppedByRetention: 30, droppedCorrupt: 0, droppedCorruptBytes: 0 });
    expect(counters.get('storage.readings.dropped_retention')).toBe(30);
    const records = await collect(log.read());
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 30 + i));
  });

  it('never deletes the active segment, even when it alone is over the bound', async () => {
    const log = await openLog({ segmentBytes: 10_000, maxBytes: 300 });
    await appendRange(log, 0, 5);
    expect(log.stats()).toMatchObject({ segments: 1, bytes: 500, droppedByRetention: 0, firstSeq: 0 });
  });

  it('continues seqs after a reopen', async () => {
    const first = await openLog();
    await appendRange(first, 0, 13);
    await first.close();
    const second = await openLog();
    expect(second.stats()).toMatchObject({ firstSeq: 0, nextSeq: 13, segments: 2, bytes: 1300, droppedCorrupt: 0 });
    expect(await second.append(payload(13))).toBe(13);
    expect((await collect(second.read())).map((r) => r.payload)).toEqual(Array.from({ length: 14 }, (_, i) => payload(i)));
  });

  it('drops a torn last record on reopen, counts it, and appends after the valid prefix', async () => {
    const counters = new Counters();
    const first = await openLog();
    await appendRange(first, 0, 4);
    await first.close();
    const torn = encodeRecord(payload(4)).subarray(0, 60);
    await appendFile(segPath(0), torn);

    const second = await openLog({ counters });
    expect(second.stats()).toMatchObject({ nextSeq: 4, bytes: 400, droppedCorrupt: 1 });
    expect(counters.get('storage.readings.dropped_corrupt')).toBe(1);
    expect((await stat(segPath(0))).size).toBe(400);
    expect(await second.append(Buffer.from('after the crash'))).toBe(4);
    const records = await collect(second.read());
    expect(records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(records.slice(0, 4).map((r) => r.payload)).toEqual([0, 1, 2, 3].map(payload));
    expect(records[4]!.payload.toString()).toBe('after the crash');
  });

  it('drops garbage appended after the last record', async () => {
    const first = await openLog();
    await appendRange(first, 0, 3);
    await first.close();
    await appendFile(segPath(0), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03]));
    const second = await openLog();
    expect(second.stats()).toMatchObject({ nextSeq: 3, droppedCorrupt: 1 });
    expect((await collect(second.read())).map((r) => r.payload)).toEqual([0, 1, 2].map(payload));
    expect(await second.append(payload(3))).toBe(3);
    expect((await collect(second.read())).map((r) => r.payload)).toEqual([0, 1, 2, 3].map(payload));
  });

  it('keeps the prefix before a CRC failure in the last segment and counts the records behind it', async () => {
    const first = await openLog();
    await appendRange(first, 0, 6);
    await first.close();
    const bytes = await readFile(segPath(0));
    bytes[3 * FRAME + FRAME_HEADER_BYTES + 5]! ^= 0xff; // inside record 3's payload
    await writeFile(segPath(0), bytes);

    const second = await openLog();
    expect(second.stats()).toMatchObject({ nextSeq: 3, bytes: 300, droppedCorrupt: 3 });
    expect((await collect(second.read())).map((r) => r.payload)).toEqual([0, 1, 2].map(payload));
    expect(await second.append(payload(3))).toBe(3);
    expect((await collect(second.read())).map((r) => r.payload)).toEqual([0, 1, 2, 3].map(payload));
    expect((await stat(segPath(0))).size).toBe(4 * FRAME);
  });

  it('keeps the valid prefix of a corrupt middle segment and everything after it', async () => {
    const first = await openLog({ segmentBytes: 1000 });
    await appendRange(first, 0, 25);
    await first.close();
    const bytes = await readFile(segPath(10));
    bytes[6 * FRAME + FRAME_HEADER_BYTES]! ^= 0x10; // record 16
    await writeFile(segPath(10), bytes);

    const second = await openLog({ segmentBytes: 1000 });
    // Records 16..19 are lost: the seq gap to the next segment says exactly how many.
    expect(second.stats()).toMatchObject({ segments: 3, nextSeq: 25, droppedCorrupt: 4, bytes: 2500 - 400 });
    const seqs = (await collect(second.read())).map((r) => r.seq);
    expect(seqs).toEqual([...Array.from({ length: 16 }, (_, i) => i), 20, 21, 22, 23, 24]);
    expect(await second.append(payload(25))).toBe(25);
    expect((await stat(segPath(10))).size).toBe(6 * FRAME);
  });

  it('keeps call order for concurrent appends', async () => {
    const log = await openLog({ segmentBytes: 700 });
    const seqs = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append(payload(i))));
    expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => i));
    const records = await collect(log.read());
    expect(records.map((r) => r.payload)).toEqual(Array.from({ length: 60 }, (_, i) => payload(i)));
  });

  it('rejects a record over the limit and stays usable', async () => {
    const log = await openLog();
    await expect(log.append(Buffer.alloc(MAX_RECORD_BYTES + 1))).rejects.toMatchObject({ code: ErrorCodes.RECORD_TOO_LARGE });
    expect(await log.append(payload(0))).toBe(0);
    expect(log.stats().bytes).toBe(FRAME);
  });

  it('flushes and closes; afterwards appends fail with STORAGE_CLOSED', async () => {
    const log = await openLog();
    const pending = log.append(payload(0));
    await log.flush();
    await log.close();
    expect(await pending).toBe(0);
    await expect(log.append(payload(1))).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CLOSED });
    await expect(log.flush()).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CLOSED });
    await expect(collect(log.read())).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CLOSED });
    expect((await stat(segPath(0))).size).toBe(FRAME);
  });

  it('rejects appends before open with STORAGE_CLOSED', async () => {
    const log = new SegmentLog({ dir: path.join(dir, 'never'), name: 'never', segmentBytes: 1000, maxBytes: 10_000 });
    await expect(log.append(payload(0))).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CLOSED });
  });
});

describe('reading from the middle of a segment', () => {
  it('reads little more than what it returns (a sparse index of frame offsets), also after a restart', async () => {
    const counters = new Counters();
    const log = await openLog({ segmentBytes: 1024 * 1024, counters });
    for (let i = 0; i < 5000; i++) await log.append(payload(i)); // 500 KB in one segment
    const cost = async (target: SegmentLog, fromSeq: number) => {
      const before = counters.get('storage.read_bytes');
      const got = await collect(target.read(fromSeq, 10));
      expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => fromSeq + i));
      expect(got[0]?.payload.toString()).toBe(payload(fromSeq).toString());
      return counters.get('storage.read_bytes') - before;
    };
    // A want near the end of a 500 KB segment reads one chunk (64 KiB) or two, not the whole segment.
    expect(await cost(log, 4990)).toBeLessThanOrEqual(2 * 64 * 1024);
    expect(await cost(log, 2500)).toBeLessThanOrEqual(2 * 64 * 1024);
    await log.close();
    logs.splice(logs.indexOf(log), 1);
    const reopened = await openLog({ segmentBytes: 1024 * 1024, counters });
    expect(await cost(reopened, 4990)).toBeLessThanOrEqual(2 * 64 * 1024);
    expect(await cost(reopened, 0)).toBeLessThanOrEqual(2 * 64 * 1024);
  });
});
