/**
 * kill -9 in the middle of writing, then a torn record on disk (what a power
 * cut mid-write leaves): the restarted node recovers, keeps every record it
 * had published before the crash, drops only the torn one, and counts it.
 */
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { SegmentLog } from '../../../runtime/storage/segment-log.js';
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

describe('crash recovery of a whole node (SIGKILL, then a torn write)', () => {
  let dir: string;
  let running: NodeProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-crash-'));
    await writeFile(path.join(dir, 'apiary.yaml'), CONFIG);
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every published record, drops the torn one, and carries on', async () => {
    const args = ['--config', path.join(dir, 'apiary.yaml'), '--data-dir', path.join(dir, 'data'), '--port', '0'];
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
    const streamDir = path.join(dir, 'data', 'streams', 'readings');
    const segments = (await readdir(streamDir)).filter((f) => f.endsWith('.seg')).sort();
    await appendFile(path.join(streamDir, segments.at(-1) ?? ''), Buffer.from([0x40, 0x00, 0x00]));

    running = await startNodeProcess(args);
    const reply = await requestNode({ url: `mqtt://127.0.0.1:${running.port}`, topicPrefix: 'apiary', command: 'status' });
    const streams = (reply.result as { storage: { streams: { name: string; droppedCorrupt: number; nextSeq: number }[] } }).storage.streams;
    const readings = streams.find((s) => s.name === 'readings');
    expect(readings?.droppedCorrupt).toBe(1);
    // The warning says what was cut, per stream, not only that logs were recovered.
    expect(running.output()).toContain('recovery cut readings: 1 torn record (3 bytes)');
    expect(readings?.nextSeq).toBeGreaterThanOrEqual(seenBeforeKill.length);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);

    const log = new SegmentLog({ dir: streamDir, name: 'readings', segmentBytes: 1024 * 1024, maxBytes: 16 * 1024 * 1024 });
    await log.open();
    const stored: { seq: number; t: number; channel: string }[] = [];
    for await (const record of log.read(0)) stored.push({ seq: record.seq, ...(JSON.parse(record.payload.toString()) as { t: number; channel: string }) });
    await log.close();
    expect(stored.map((r) => r.seq)).toEqual(stored.map((_, i) => i)); // contiguous from 0
    const storedTimes = new Set(stored.filter((r) => r.channel === 'temperature').map((r) => r.t));
    expect(seenBeforeKill.filter((t) => !storedTimes.has(t))).toEqual([]); // nothing published was lost
    expect(storedTimes.size).toBeGreaterThan(seenBeforeKill.length); // and the restarted node kept writing
  });
});
