/**
 * Counters survive restarts (saved with the node state, with the time
 * counting began), and status carries a fingerprint of the shared document
 * that two nodes can be compared by.
 */
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedDigest } from '../../../runtime/core/shared-digest.js';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { meshTestBed, startLinkedPair, waitFor } from '../../support/mesh-node.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

interface Status { counters: Record<string, number>; countersSince: string; mesh: { shared: { sha256: string; bytes: number; stateVector: Record<string, number> } } }

describe('counters across restarts', () => {
  let dir: string;
  let running: NodeProcess | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-counters-'));
    await writeFile(path.join(dir, 'apiary.yaml'), 'device:\n  simulation: { speed: 600 }\nlog: { level: warn }\n');
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps what was counted before a clean restart and after a kill -9, since the first start', async () => {
    const args = ['--config', path.join(dir, 'apiary.yaml'), '--data-dir', path.join(dir, 'data'), '--port', '0'];
    const status = async (node: NodeProcess) => (await requestNode({ url: `mqtt://127.0.0.1:${node.port}`, topicPrefix: 'apiary', command: 'status' })).result as Status;
    running = await startNodeProcess(args);
    const first = await status(running);
    expect(first.mesh.shared.sha256).toMatch(/^[0-9a-f]{64}$/);
    running.child.kill('SIGKILL');
    await running.exited;
    // A torn tail: recovery at the next start counts one dropped record.
    const streamDir = path.join(dir, 'data', 'streams', 'readings');
    const segments = (await readdir(streamDir)).filter((f) => f.endsWith('.seg')).sort();
    await appendFile(path.join(streamDir, segments.at(-1) ?? ''), Buffer.from([0x40, 0x00, 0x00]));
    running = await startNodeProcess(args);
    expect((await status(running)).counters['storage.readings.dropped_corrupt']).toBe(1);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = await startNodeProcess(args);
    const after = await status(running);
    expect(after.counters['storage.readings.dropped_corrupt']).toBe(1); // counted in an earlier run, still shown
    expect(after.countersSince).toBe(first.countersSince);
    // Saved at every boot too: a kill -9 now does not lose it.
    running.child.kill('SIGKILL');
    await running.exited;
    running = await startNodeProcess(args);
    expect((await status(running)).counters['storage.readings.dropped_corrupt']).toBe(1);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
  }, 60_000);
});

describe('shared document fingerprint', () => {
  const { dir: testDir, nodes, status } = meshTestBed('shared-digest');

  it('is the same on two nodes exactly when they hold the same document', async () => {
    const { a, b } = await startLinkedPair(testDir(), nodes);
    await waitFor(() => sharedDigest(a.mesh.state).sha256 === sharedDigest(b.mesh.state).sha256, 10_000, status);
    await a.mesh.setShared('thresholds', 'swarming', 0.75);
    const changed = sharedDigest(a.mesh.state);
    await waitFor(() => sharedDigest(b.mesh.state).sha256 === changed.sha256, 10_000, status);
    expect(sharedDigest(b.mesh.state).stateVector).toEqual(changed.stateVector);
    expect(Object.keys(changed.stateVector)).toHaveLength(2); // both nodes wrote their member record
  });
});
