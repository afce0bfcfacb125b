/**
 * Property tests of what this part decodes from files someone else may have
 * written: the data dir lock (any bytes: the dir is taken over or refused
 * with DATA_DIR_LOCKED, never another error), and segment files read by
 * `apiary feed` (any bytes: counted as invalid or cut, never a crash).
 */
import { mkdtemp, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summariseFeed } from '../../../runtime/cli/feed-command.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { ErrorCodes, isApiaryError } from '../../../runtime/errors.js';
import { loadOrCreateKeyFile } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { encodeRecord } from '../../../runtime/storage/record-frame.js';
import { DataDirLock, LOCK_FILE } from '../../../runtime/storage/data-dir-lock.js';
import { segmentFileName } from '../../../runtime/storage/segment-log.js';

describe('decoders of files in the data dir', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-fuzz-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('any lock file content: taken over (dead or unreadable and old) or refused as locked, never another error', async () => {
    let run = 0;
    const holder = fc.record({ version: fc.constantFrom(1, 2), pid: fc.oneof(fc.integer(), fc.constant(process.pid), fc.constant(2 ** 22 + 7)), startTime: fc.oneof(fc.constant(null), fc.string()), hostname: fc.oneof(fc.constant(os.hostname()), fc.string()), startedAt: fc.string(), nonce: fc.string() });
    const content = fc.oneof(fc.uint8Array({ maxLength: 300 }), holder.map((h) => new TextEncoder().encode(JSON.stringify(h))));
    await fc.assert(fc.asyncProperty(content, fc.boolean(), async (bytes, old) => {
      const dataDir = path.join(dir, `lock-${run++}`);
      await mkdir(dataDir);
      const file = path.join(dataDir, LOCK_FILE);
      await writeFile(file, bytes);
      if (old) await utimes(file, new Date(0), new Date(0));
      try {
        const lock = await DataDirLock.acquire(dataDir);
        await lock.release();
      } catch (err) {
        expect(isApiaryError(err, ErrorCodes.DATA_DIR_LOCKED), String(err)).toBe(true);
      }
    }), { numRuns: 100 });
  });

  it('two starters racing for one stale lock: exactly one takes the data dir', async () => {
    for (let round = 0; round < 50; round++) {
      const dataDir = path.join(dir, `race-${round}`);
      await mkdir(dataDir);
      // A node that died (pid far above any pid_max in use) left its lock.
      await writeFile(path.join(dataDir, LOCK_FILE), JSON.stringify({ version: 1, pid: 2 ** 22 + 11, startTime: '1', hostname: os.hostname(), startedAt: 'then', nonce: 'dead' }));
      const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => DataDirLock.acquire(dataDir)));
      const held = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      expect(held).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(isApiaryError(o.reason, ErrorCodes.DATA_DIR_LOCKED)).toBe(true);
      await held[0]?.release();
    }
  });

  it('any segment bytes: apiary feed counts entries, invalid ones and cut tails, and never throws', async () => {
    const { identity } = await loadOrCreateKeyFile(path.join(dir, 'key.json'));
    const good: FeedEntry[] = [];
    for (let i = 0; i < 3; i++) {
      const before = good.at(-1);
      good.push(signEntry(identity, { seq: i + 1, prev: before ? entryHash(before) : null, hlc: { l: 1, c: i }, type: 'reading', body: { i } }));
    }
    let run = 0;
    const frame = fc.oneof(
      fc.constantFrom(...good.map((e) => encodeRecord(encodeEntry(e)))),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => encodeRecord(b)),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    );
    await fc.assert(fc.asyncProperty(fc.array(frame, { maxLength: 8 }), fc.nat(30), async (frames, flip) => {
      const dataDir = path.join(dir, `feed-${run++}`);
      const feedDir = path.join(dataDir, 'mesh', 'feeds', identity.nodeId);
      await mkdir(feedDir, { recursive: true });
      const bytes = Buffer.concat(frames);
      const at = flip % Math.max(1, bytes.length);
      if (bytes.length > 0) bytes[at] = (bytes[at] ?? 0) ^ 0x01;
      await writeFile(path.join(feedDir, segmentFileName(0)), bytes);
      const summary = await summariseFeed(parseConfig({ node: { dataDir } }), identity.nodeId);
      expect(summary.entries + summary.invalid).toBeLessThanOrEqual(frames.length);
      expect(summary.bytes).toBeLessThanOrEqual(bytes.length);
    }), { numRuns: 200 });
  });
});
