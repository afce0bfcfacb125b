/**
 * readings/range on a real node whose readings stream holds a long history
 * (written through the node's own storage, then the node started on it): a
 * range far older than any recent window is found, exactly, oldest first; a
 * range wider than the limit says it is truncated; bad ranges are refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { NodeStorage } from '../../../../runtime/core/node-storage.js';
import { Counters } from '../../../../runtime/counters.js';
import { ErrorCodes } from '../../../../runtime/errors.js';

/** A year ago, one record a minute per channel, three channels: 40,000 records. */
const START = Date.parse('2025-12-01T00:00:00Z');
const MINUTE = 60_000;
const RECORDS = 40_000;
const CHANNELS = ['temperature', 'humidity', 'weight'] as const;
const valueAtIndex = (i: number) => Math.round(i * 7) / 100;

describe('readings/range over a long stored history', () => {
  let dir: string;
  let node: ApiaryNode;
  const run = (args: Record<string, unknown>) => node.commands.run('readings/range', args);
  /** A command's result, or a throw with its refusal. */
  const resultOf = async <T>(name: string, args: Record<string, unknown>): Promise<T> => {
    const outcome = await node.commands.run(name, args);
    if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.error}`);
    return outcome.result as T;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-range-'));
    const config = parseConfig({
      app: 'sensor-node', node: { name: 'range', dataDir: dir }, broker: { port: 0 }, homeAssistant: { enabled: false }, decisions: [],
      mesh: { enabled: false }, device: { simulation: { speed: 1 } },
    });
    const storage = new NodeStorage(config, new Counters());
    await storage.start();
    for (let i = 0; i < RECORDS; i++) {
      const channel = CHANNELS[i % CHANNELS.length] as string;
      const t = START + Math.floor(i / CHANNELS.length) * MINUTE;
      await storage.append('readings', { channel, value: valueAtIndex(i), unit: channel === 'weight' ? 'kg' : '', t, time: new Date(t).toISOString() });
    }
    await storage.close();
    node = createNode(config, pino({ level: 'silent' }));
    await node.start();
  }, 120_000);
  afterAll(async () => {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a range at the start of the history exactly, however far it is behind the recent readings', async () => {
    // Minutes 100..109 of a year-old history: weight is record 3m + 2.
    const from = START + 100 * MINUTE;
    const to = START + 109 * MINUTE;
    const result = await resultOf<{ channel: string; unit: string; readings: { value: number; t: number }[]; truncated: boolean }>('readings/range', { channel: 'weight', from, to: new Date(to).toISOString() });
    expect(result).toMatchObject({ channel: 'weight', unit: 'kg', truncated: false });
    expect(result.readings).toEqual(Array.from({ length: 10 }, (_, k) => ({ t: from + k * MINUTE, value: valueAtIndex((100 + k) * 3 + 2) })));
    // readings/recent cannot reach it: its window is the tail.
    const recent = await resultOf<{ readings: { t: number }[] }>('readings/recent', { channel: 'weight', limit: 500 });
    expect(recent.readings.every((r) => r.t > to)).toBe(true);
  });

  it('a range wider than the limit returns the first `limit` readings and says it is truncated', async () => {
    const result = await resultOf<{ readings: { t: number }[]; truncated: boolean }>('readings/range', { channel: 'temperature', from: START, to: START + 1000 * MINUTE, limit: 50 });
    expect(result.truncated).toBe(true);
    expect(result.readings.map((r) => r.t)).toEqual(Array.from({ length: 50 }, (_, k) => START + k * MINUTE));
  });

  it('a range before the history or after it is empty; to before from and a bad time are refused', async () => {
    expect(await resultOf('readings/range', { channel: 'weight', from: 0, to: START - 1 })).toMatchObject({ readings: [], truncated: false });
    expect(await resultOf('readings/range', { channel: 'weight', from: Date.now() + 86_400_000 })).toMatchObject({ readings: [], truncated: false });
    expect(await run({ channel: 'weight', from: START + MINUTE, to: START })).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('to: must not be before from') as string });
    expect(await run({ channel: 'weight', from: 'yesterday' })).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('expected a time') as string });
  });
});
