/**
 * An extension that fails to start, on a real node: it is reported and
 * counted, and it leaves nothing of what the kernel held for it running (its
 * listeners and its `every` timers); the node and the other extensions run on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../runtime/apps/index.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import type { Extension, ExtensionEntry } from '../../../runtime/core/extension.js';
import { z } from 'zod';
import type { CommandRegistry } from '../../../runtime/commands/command-registry.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { waitFor } from '../../support/mesh-node.js';

describe('an extension that fails to start, on a real node', () => {
  let dir: string;
  let node: ApiaryNode;
  const heard = { readings: 0, ticks: 0 };

  /** `broken/ping`: live while the extension runs, else unavailable. */
  const declarePing = (registry: CommandRegistry, live?: boolean) => registry.define('broken/ping', {
    description: 'answers pong while the broken extension runs',
    args: z.object({}),
    unavailable: () => (live ? undefined : 'the broken extension is not running'),
    handler: () => 'pong',
  });

  /** Declares a command, listens, sets a timer through the kernel, then throws. */
  const broken: ExtensionEntry = {
    name: 'broken',
    enabled: () => true,
    declareCommands: (registry) => declarePing(registry),
    load: () => Promise.resolve((): Extension => ({
      name: 'broken',
      start: (ctx) => {
        declarePing(ctx.commands, true);
        ctx.events.on('reading', () => { heard.readings += 1; });
        ctx.every(1_000, () => { heard.ticks += 1; });
        return Promise.reject(new Error('the broken extension cannot start'));
      },
      stop: () => Promise.resolve(),
    })),
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-ext-failure-'));
    const config = parseConfig({ node: { dataDir: dir }, broker: { port: 0 }, device: { simulation: { speed: 600 } } });
    node = new ApiaryNode(config, pino({ level: 'silent' }), [broken, ...extensionsFor(config)]);
    await node.start();
  });

  afterAll(async () => {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is reported as failed with its error and counted; the others run', async () => {
    const status = await node.status();
    const states = status.extensions as Record<string, { state: string; error?: string }>;
    expect(states.broken).toEqual({ state: 'failed', error: expect.stringContaining('the broken extension cannot start') as unknown });
    expect(states.recorder).toEqual({ state: 'running' });
    expect(states.beehive).toEqual({ state: 'running' });
    expect((status.counters as Record<string, number>)['extensions.failed']).toBe(1);
  });

  it('holds no listener and no timer after its failed start, while the node goes on reading', async () => {
    expect(node.listenerCount('broken')).toBe(0);
    const before = { ...heard };
    const firstT = node.latest.readings.temperature?.t ?? 0;
    // Two more temperature readings (a minute of node time apart): a live 1 s timer would have ticked dozens of times.
    let seen = 0;
    let lastT = firstT;
    await waitFor(() => {
      const t = node.latest.readings.temperature?.t ?? 0;
      if (t > lastT) { seen += 1; lastT = t; }
      return seen >= 2;
    }, 20_000, () => 'no new temperature readings');
    expect(heard).toEqual(before);
  });

  it('answers its commands as unavailable, not with the handlers of an extension that is not running', async () => {
    expect(await node.commands.run('broken/ping', {})).toEqual({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'the broken extension is not running' });
    // The others' commands are untouched.
    expect(await node.commands.run('status', {})).toMatchObject({ ok: true });
  });
});
