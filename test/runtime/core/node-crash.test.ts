/**
 * kill -9 in the middle of writing, then a torn record on disk (what a power
 * cut mid-write leaves): the restarted node recovers, keeps every record it
 * had published before the crash, drops only the torn one, and counts it.
 * Readings are shared (the default), so they are written once, into the
 * node's own feed (issue 16): that is the log torn here, and the readings
 * stream, an index over it, still answers for every published reading.
 * The same holds for readings sealed for recipients (`mesh.private`): they
 * are written once too, as private entries of the feed.
 */
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

const CONFIG = `
device:
  simulation: { speed: 600 }
  sensors:
    temperature: { interval: 10s }
    humidity: { interval: 10s }
    weight: { interval: 10s }
    sound: { interval: 1m }
log: { level: warn }
`;
// Readings sealed for a recipient this node does not know yet (sealed for itself then, and counted).
const SEALED = `${CONFIG}mesh:
  private: [{ stream: readings, recipients: [abcdefghijkl] }]
`;

describe('crash recovery of a whole node (SIGKILL, then a torn write)', () => {
  let dir: string;
  let running: NodeProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-crash-'));
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it.each([['shared in plain', CONFIG], ['sealed for recipients', SEALED]])('keeps every published record, drops the torn one, and carries on (readings %s)', async (kind, config) => {
    const run = path.join(dir, kind.replace(/ /g, '-'));
    await mkdir(run);
    await writeFile(path.join(run, 'apiary.yaml'), config);
    const args = ['--config', path.join(run, 'apiary.yaml'), '--data-dir', path.join(run, 'data'), '--port', '0'];
    running = await startNodeProcess(args);
    const client = await connectAsync(`mqtt://127.0.0.1:${running.port}`);
    const published: number[] = [];
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/readings/temperature')) published.push((JSON.parse(payload.toString()) as { t: number }).t);
    });
    await client.subscribeAsync('apiary/+/readings/temperature', { qos: 0 });
    // The node appends each record before publishing it, so what we saw is on disk.
    while (published.length < 150) await new Promise((resolve) => setTimeout(resolve, 20));
    running.child.kill('SIGKILL');
    expect((await running.exited).signal).toBe('SIGKILL');
    await client.endAsync(true);
    const seenBeforeKill = [...published];

    // Tear the tail as a power cut mid-write would: half a frame header.
    const feedsDir = path.join(run, 'data', 'mesh', 'feeds');
    const [origin = ''] = await readdir(feedsDir);
    const feedDir = path.join(feedsDir, origin);
    const segments = (await readdir(feedDir)).filter((f) => f.endsWith('.seg')).sort();
    await appendFile(path.join(feedDir, segments.at(-1) ?? ''), Buffer.from([0x40, 0x00, 0x00]));
    // The old per-stream copy is gone: the readings stream's own log holds nothing.
    const ownLog = (await readdir(path.join(run, 'data', 'streams', 'readings'))).filter((f) => f.endsWith('.seg'));
    expect((await Promise.all(ownLog.map((f) => stat(path.join(run, 'data', 'streams', 'readings', f))))).every((s) => s.size === 0)).toBe(true);
    // Sealed readings are boxes in the feed: no plaintext reading on disk at all.
    const feedText = (await Promise.all(segments.map((f) => readFile(path.join(feedDir, f), 'latin1')))).join('');
    expect(/channel\\?":\\?"temperature/.test(feedText)).toBe(config === CONFIG);

    running = await startNodeProcess(args);
    const url = `mqtt://127.0.0.1:${running.port}`;
    const reply = await requestNode({ url, topicPrefix: 'apiary', command: 'status' });
    const result = reply.result as { counters: Record<string, number>; storage: { streams: { name: string; nextSeq: number; firstSeq: number; inFeed?: { records: number } }[] } };
    expect(result.counters[`storage.feed.${origin}.dropped_corrupt`]).toBe(1);
    // The warning says what was cut, not only that logs were recovered.
    expect(running.output()).toContain('recovery cut feed (this node\'s, where its shared streams are): 1 torn record;');
    const readings = result.storage.streams.find((s) => s.name === 'readings');
    expect(readings?.nextSeq).toBeGreaterThanOrEqual(seenBeforeKill.length);
    expect(readings?.inFeed?.records).toBe((readings?.nextSeq ?? 0) - (readings?.firstSeq ?? 0)); // every record indexed, seqs without gaps

    const range = await requestNode({ url, topicPrefix: 'apiary', command: 'readings/range', args: { channel: 'temperature', from: 0, limit: 2000 } });
    const storedTimes = new Set((range.result as { readings: { t: number }[] }).readings.map((r) => r.t));
    expect(seenBeforeKill.filter((t) => !storedTimes.has(t))).toEqual([]); // nothing published was lost
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);

    // A clean stop saves the stream index: the next start reads no feed entry to rebuild it, has every record, and goes on sensing.
    running = await startNodeProcess(args);
    const again = `mqtt://127.0.0.1:${running.port}`;
    const status = (await requestNode({ url: again, topicPrefix: 'apiary', command: 'status' })).result as typeof result;
    // Counters are totals over the data dir's life: this start added a checkpoint used, and no entry read.
    expect(status.counters['storage.feed_index.checkpoint_used']).toBe((result.counters['storage.feed_index.checkpoint_used'] ?? 0) + 1);
    expect(status.counters['storage.feed_index.entries_read']).toBe(result.counters['storage.feed_index.entries_read']);
    const before = status.storage.streams.find((s) => s.name === 'readings')?.nextSeq ?? 0;
    const after = async () => ((await requestNode({ url: again, topicPrefix: 'apiary', command: 'status' })).result as typeof result).storage.streams.find((s) => s.name === 'readings')?.nextSeq ?? 0;
    while ((await after()) <= before) await new Promise((resolve) => setTimeout(resolve, 50));
    const rangeAgain = await requestNode({ url: again, topicPrefix: 'apiary', command: 'readings/range', args: { channel: 'temperature', from: 0, limit: 2000 } });
    const timesAgain = new Set((rangeAgain.result as { readings: { t: number }[] }).readings.map((r) => r.t));
    expect(seenBeforeKill.filter((t) => !timesAgain.has(t))).toEqual([]);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
  });
});
