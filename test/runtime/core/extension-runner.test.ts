/**
 * The kernel's extension loop on its own: the start order (`after`, then the
 * list), reverse stop, isolation of a failing start or stop, one stop only,
 * an abort between extensions, and how statuses are merged.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../runtime/config/load-config.js';
import type { Extension, ExtensionEntry } from '../../../runtime/core/extension.js';
import { ExtensionRunner, orderExtensions, type ExtensionState } from '../../../runtime/core/extension-runner.js';
import type { NodeContext } from '../../../runtime/core/node-context.js';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes, isApiaryError } from '../../../runtime/errors.js';

const config = parseConfig({});
const logger = pino({ level: 'silent' });

interface Behaviour {
  after?: string[];
  enabled?: boolean;
  startFails?: boolean;
  stopFails?: boolean;
  status?: Record<string, unknown>;
  /** Runs during start (to abort, say). */
  onStart?: () => void;
}

/** Entries whose extensions record every call in `calls`. */
function harness(spec: Record<string, Behaviour>) {
  const calls: string[] = [];
  const entries: ExtensionEntry[] = Object.entries(spec).map(([name, b]) => ({
    name,
    ...(b.after ? { after: b.after } : {}),
    enabled: () => b.enabled ?? true,
    load: () => {
      calls.push(`load ${name}`);
      return Promise.resolve((): Extension => ({
        name,
        start: () => {
          calls.push(`start ${name}`);
          b.onStart?.();
          return b.startFails ? Promise.reject(new Error(`${name} cannot start`)) : Promise.resolve();
        },
        stop: () => {
          calls.push(`stop ${name}`);
          return b.stopFails ? Promise.reject(new Error(`${name} cannot stop`)) : Promise.resolve();
        },
        ...(b.status ? { status: () => b.status ?? {} } : {}),
      }));
    },
  }));
  const counters = new Counters();
  const runner = new ExtensionRunner(entries, config, counters, logger);
  const cleanUp = (name: string) => { calls.push(`cleanUp ${name}`); };
  // The runner only hands the context on; these extensions do not read it.
  const contextFor = () => ({}) as NodeContext;
  return { calls, counters, runner, cleanUp, contextFor };
}

const names = (entries: readonly ExtensionEntry[]) => entries.map((e) => e.name);
const entry = (name: string, after?: string[]): ExtensionEntry => ({
  name, ...(after ? { after } : {}), enabled: () => true, load: () => Promise.reject(new Error('not loaded in these tests')),
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('orderExtensions', () => {
  it('keeps the list order where no `after` says otherwise', () => {
    expect(names(orderExtensions([entry('a'), entry('b'), entry('c')]))).toEqual(['a', 'b', 'c']);
  });

  it('starts an extension after those it names, even when listed before them', () => {
    expect(names(orderExtensions([entry('rules', ['recorder']), entry('x'), entry('recorder')]))).toEqual(['recorder', 'rules', 'x']);
    expect(names(orderExtensions([entry('ha', ['rules']), entry('rules', ['recorder']), entry('recorder')]))).toEqual(['recorder', 'rules', 'ha']);
  });

  it('ignores an `after` naming an extension that is off or absent', () => {
    expect(names(orderExtensions([entry('b', ['not-here']), entry('a')]))).toEqual(['b', 'a']);
  });

  it('throws APIARY_EXTENSION_ORDER naming the circle', () => {
    const err = thrown(() => orderExtensions([entry('a', ['c']), entry('b', ['a']), entry('c', ['b'])]));
    expect(isApiaryError(err, ErrorCodes.EXTENSION_ORDER)).toBe(true);
    expect((err as Error).message).toContain('a -> c -> b -> a');
  });

  it('throws APIARY_EXTENSION_ORDER for a name listed twice', () => {
    const err = thrown(() => orderExtensions([entry('a'), entry('b'), entry('a')]));
    expect(isApiaryError(err, ErrorCodes.EXTENSION_ORDER)).toBe(true);
    expect((err as Error).message).toContain('"a" is listed twice');
  });
});

describe('ExtensionRunner', () => {
  it('loads and starts only the enabled ones, in order, and stops them in reverse', async () => {
    const { calls, runner, cleanUp, contextFor } = harness({ b: { after: ['a'] }, off: { enabled: false }, a: {}, c: {} });
    expect(names(runner.enabled())).toEqual(['a', 'b', 'c']);
    await runner.start(contextFor, new AbortController().signal, cleanUp);
    expect(calls).toEqual(['load a', 'start a', 'load b', 'start b', 'load c', 'start c']);
    expect(runner.status({}).extensions).toEqual({ a: { state: 'running' }, b: { state: 'running' }, c: { state: 'running' } });
    calls.length = 0;
    await runner.stop(cleanUp);
    expect(calls).toEqual(['stop c', 'cleanUp c', 'stop b', 'cleanUp b', 'stop a', 'cleanUp a']);
    expect(runner.status({}).extensions).toEqual({ a: { state: 'stopped' }, b: { state: 'stopped' }, c: { state: 'stopped' } });
  });

  it('reports a failed start, counts it, stops that extension at once and removes its listeners; the next ones still start', async () => {
    const { calls, counters, runner, cleanUp, contextFor } = harness({ a: {}, broken: { startFails: true, status: { broken: 'shown' } }, c: {} });
    await runner.start(contextFor, new AbortController().signal, cleanUp);
    expect(calls).toEqual(['load a', 'start a', 'load broken', 'start broken', 'stop broken', 'cleanUp broken', 'load c', 'start c']);
    expect(counters.get('extensions.failed')).toBe(1);
    const status = runner.status({});
    const states = status.extensions as Record<string, ExtensionState>;
    expect(states.broken).toEqual({ state: 'failed', error: expect.stringContaining('broken cannot start') as unknown });
    expect(states.a).toEqual({ state: 'running' });
    expect(states.c).toEqual({ state: 'running' });
    expect(status).not.toHaveProperty('broken'); // a failed extension's status is not merged in
    calls.length = 0;
    await runner.stop(cleanUp);
    expect(calls).toEqual(['stop c', 'cleanUp c', 'stop a', 'cleanUp a']); // not stopped a second time
    expect((runner.status({}).extensions as Record<string, ExtensionState>).broken?.state).toBe('failed');
  });

  it('counts a stop that throws, still cleans up after it, and stops the others', async () => {
    const { calls, counters, runner, cleanUp, contextFor } = harness({ a: {}, b: { stopFails: true }, c: {} });
    await runner.start(contextFor, new AbortController().signal, cleanUp);
    calls.length = 0;
    await expect(runner.stop(cleanUp)).resolves.toBeUndefined();
    expect(calls).toEqual(['stop c', 'cleanUp c', 'stop b', 'cleanUp b', 'stop a', 'cleanUp a']);
    expect(counters.get('extensions.stop_failed')).toBe(1);
  });

  it('stops once: a second stop() stops nothing again', async () => {
    const { calls, runner, cleanUp, contextFor } = harness({ a: {}, b: {} });
    await runner.start(contextFor, new AbortController().signal, cleanUp);
    calls.length = 0;
    const first = runner.stop(cleanUp);
    const second = runner.stop(cleanUp);
    await Promise.all([first, second]);
    await runner.stop(cleanUp);
    expect(calls).toEqual(['stop b', 'cleanUp b', 'stop a', 'cleanUp a']);
  });

  it('rejects with APIARY_START_ABORTED before the next extension once the signal fires; the started ones are stopped by stop()', async () => {
    const abort = new AbortController();
    const { calls, counters, runner, cleanUp, contextFor } = harness({ a: {}, b: { onStart: () => abort.abort() }, c: {} });
    const err = await runner.start(contextFor, abort.signal, cleanUp).then(() => undefined, (e: unknown) => e);
    expect(isApiaryError(err, ErrorCodes.START_ABORTED)).toBe(true);
    expect((err as Error).message).toContain('"c"');
    expect(calls).toEqual(['load a', 'start a', 'load b', 'start b']);
    expect(counters.get('extensions.failed')).toBe(0);
    calls.length = 0;
    await runner.stop(cleanUp);
    expect(calls).toEqual(['stop b', 'cleanUp b', 'stop a', 'cleanUp a']);
  });

  it('a start that fails because of the abort is START_ABORTED, not a failed extension', async () => {
    const abort = new AbortController();
    const { calls, counters, runner, cleanUp, contextFor } = harness({ a: { startFails: true, onStart: () => abort.abort() }, b: {} });
    const err = await runner.start(contextFor, abort.signal, cleanUp).then(() => undefined, (e: unknown) => e);
    expect(isApiaryError(err, ErrorCodes.START_ABORTED)).toBe(true);
    expect(counters.get('extensions.failed')).toBe(0);
    await runner.stop(cleanUp);
    expect(calls).toEqual(['load a', 'start a', 'stop a', 'cleanUp a']);
  });

  it('merges an object status under an existing key, replaces anything else, and adds its own keys', async () => {
    const { runner, cleanUp, contextFor } = harness({
      updates: { status: { models: { updates: ['v2'] } } },
      rules: { status: { activeDecisions: ['too-warm'] } },
      replacer: { status: { speed: 1, mesh: { uplink: { connected: false } } } },
    });
    await runner.start(contextFor, new AbortController().signal, cleanUp);
    const status = runner.status({ models: { dir: '/m', loaded: [], updates: [] }, speed: 600, mesh: undefined });
    expect(status.models).toEqual({ dir: '/m', loaded: [], updates: ['v2'] });
    expect(status.activeDecisions).toEqual(['too-warm']);
    expect(status.speed).toBe(1);
    expect(status.mesh).toEqual({ uplink: { connected: false } }); // nothing to merge into
    await runner.stop(cleanUp);
  });
});
