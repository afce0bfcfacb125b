/**
 * The node's typed events: listeners run one at a time in registration order
 * (each awaited before the next starts), a failing one is counted and the
 * rest still run, and an owner's listeners go with it.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../../devices/device.js';
import { Counters } from '../../../runtime/counters.js';
import { NodeEvents } from '../../../runtime/core/node-events.js';

const READING: Reading = { channel: 'temperature', value: 21.5, unit: '°C', t: 1_000 };
const logger = pino({ level: 'silent' });

/** A promise and its resolver, to hold a listener open until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => { open = resolve; });
  return { promise, open };
}

describe('NodeEvents', () => {
  it('runs the listeners in registration order, awaiting each before the next starts', async () => {
    const events = new NodeEvents(new Counters(), logger);
    const log: string[] = [];
    const slow = gate();
    events.on('a', 'reading', async (r) => {
      log.push(`a start ${r.value}`);
      await slow.promise;
      log.push('a end');
    });
    events.on('b', 'reading', (r) => { log.push(`b ${r.value}`); });
    events.on('c', 'reading', async () => { await Promise.resolve(); log.push('c'); });

    const emitted = events.emit('reading', READING);
    // Several turns of the event loop: b must still wait for a's promise.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['a start 21.5']);
    slow.open();
    await emitted;
    expect(log).toEqual(['a start 21.5', 'a end', 'b 21.5', 'c']);
  });

  it('passes each event only to its own listeners', async () => {
    const events = new NodeEvents(new Counters(), logger);
    const seen: string[] = [];
    events.on('x', 'reading', () => { seen.push('reading'); });
    events.on('x', 'started', () => { seen.push('started'); });
    events.on('x', 'feed-append', (type) => { seen.push(`feed-append ${type}`); });
    await events.emit('feed-append', 'decision');
    await events.emit('started');
    expect(seen).toEqual(['feed-append decision', 'started']);
  });

  it('counts a failing listener (sync throw or rejection) under its owner and node.pipeline_errors; the others still run', async () => {
    const counters = new Counters();
    const events = new NodeEvents(counters, logger);
    const ran: string[] = [];
    events.on('first', 'reading', () => { ran.push('first'); });
    events.on('thrower', 'reading', () => { throw new Error('sync failure'); });
    events.on('rejecter', 'reading', () => Promise.reject(new Error('async failure')));
    events.on('last', 'reading', () => { ran.push('last'); });

    await expect(events.emit('reading', READING)).resolves.toBeUndefined();
    expect(ran).toEqual(['first', 'last']);
    expect(counters.get('events.listener_errors.thrower')).toBe(1);
    expect(counters.get('events.listener_errors.rejecter')).toBe(1);
    expect(counters.get('events.listener_errors.first')).toBe(0);
    expect(counters.get('node.pipeline_errors')).toBe(2);

    await events.emit('reading', READING);
    expect(counters.get('events.listener_errors.thrower')).toBe(2);
    expect(counters.get('node.pipeline_errors')).toBe(4);
  });

  it('removeAll(owner) removes that owner\'s listeners on every event and no one else\'s; count() tells', async () => {
    const events = new NodeEvents(new Counters(), logger);
    const ran: string[] = [];
    events.on('keep', 'reading', () => { ran.push('keep reading'); });
    events.on('drop', 'reading', () => { ran.push('drop reading'); });
    events.on('drop', 'started', () => { ran.push('drop started'); });
    events.on('keep', 'started', () => { ran.push('keep started'); });
    events.on('drop', 'decision', () => { ran.push('drop decision'); });

    expect(events.count('drop')).toBe(3);
    expect(events.count('keep')).toBe(2);
    expect(events.count('nobody')).toBe(0);
    expect(events.count()).toBe(5);

    events.removeAll('drop');
    expect(events.count('drop')).toBe(0);
    expect(events.count('keep')).toBe(2);
    expect(events.count()).toBe(2);

    await events.emit('reading', READING);
    await events.emit('started');
    expect(ran).toEqual(['keep reading', 'keep started']);

    events.removeAll('drop'); // again: nothing left to remove, nothing else touched
    expect(events.count()).toBe(2);
  });

  it('a listener that removes its own owner mid-emit does not make the next listener be skipped', async () => {
    const events = new NodeEvents(new Counters(), logger);
    const ran: string[] = [];
    events.on('self-stopping', 'reading', () => { ran.push('self-stopping'); events.removeAll('self-stopping'); });
    events.on('next', 'reading', () => { ran.push('next'); });
    await events.emit('reading', READING);
    await events.emit('reading', READING);
    expect(ran).toEqual(['self-stopping', 'next', 'next']);
  });
});
