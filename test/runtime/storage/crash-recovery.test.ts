/**
 * A real child process appends to a SegmentLog and is killed with SIGKILL at
 * an arbitrary point; every record it acknowledged must survive, in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SegmentLog } from '../../../runtime/storage/segment-log.js';
import type { StoredRecord } from '../../../runtime/storage/stream-store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'crash-writer.mjs');

/** Same as payloadFor in the fixture. */
function payloadFor(seq: number): Buffer {
  const size = seq % 25 === 24 ? 64 * 1024 : 16 + (seq % 40);
  const payload = Buffer.alloc(size, seq % 251);
  payload.write(`seq=${seq};`);
  return payload;
}

let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-crash-'));
}, 300_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** Runs the writer until it has acknowledged `killAfter` records, then SIGKILLs it. */
function runWriter(streamDir: string, killAfter: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [fixture, streamDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const acked: number[] = [];
    let partial = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) acked.push(Number(line));
      if (acked.length >= killAfter && proc.signalCode === null) proc.kill('SIGKILL');
    });
    proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('error', reject);
    // 'close' waits for stdout to end, so every line written before the kill is in.
    proc.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`crash-writer exited by itself (code ${code}):\n${stderr}`));
    });
  });
}

describe('SegmentLog crash recovery (SIGKILL of a real writer)', () => {
  it('keeps every acknowledged record across repeated kills and keeps appending', async () => {
    const streamDir = path.join(dir, 'stream');
    let nextSeq = 0;
    for (const killAfter of [213, 457, 689]) {
      const acked = await runWriter(streamDir, killAfter);
      expect(acked.length).toBeGreaterThanOrEqual(killAfter);
      // The writer continued exactly where the last recovery left off.
      expect(acked).toEqual(Array.from({ length: acked.length }, (_, i) => nextSeq + i));

      const log = new SegmentLog({ dir: streamDir, name: 'crash', segmentBytes: 16 * 1024, maxBytes: 1024 ** 3 });
      await log.open();
      const records: StoredRecord[] = [];
      for await (const record of log.read()) records.push(record);
      const count = records.length;
      expect(count).toBeGreaterThan(acked.at(-1)!);
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: count }, (_, i) => i));
      const wrong = records.filter((r) => !r.payload.equals(payloadFor(r.seq))).map((r) => r.seq);
      expect(wrong).toEqual([]);
      // At most the one frame being written at the kill can be torn.
      expect(log.stats().droppedCorrupt).toBeLessThanOrEqual(1);
      expect(log.stats().nextSeq).toBe(count);

      expect(await log.append(payloadFor(count))).toBe(count);
      await log.close();
      nextSeq = count + 1;
    }
  });
});
