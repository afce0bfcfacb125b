import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { RuleEngine } from '../../../runtime/decide/rule-engine.js';
import { deepFreeze } from '../../../runtime/deep-freeze.js';

const rules = parseConfig({
  decisions: [
    { id: 'swarming', input: 'model.hive-sound.swarm', above: 0.8, clearAt: 0.5, for: '30s', severity: 'critical', message: 'Swarming' },
    { id: 'cold', input: 'reading.temperature', below: 30, message: 'Cold' },
  ],
}).decisions;

describe('RuleEngine', () => {
  it('raises only after the condition has held for the minimum duration', () => {
    const engine = new RuleEngine(rules);
    expect(engine.observe('model.hive-sound.swarm', 0.9, 0)).toEqual([]);
    expect(engine.observe('model.hive-sound.swarm', 0.95, 20_000)).toEqual([]);
    const [raised] = engine.observe('model.hive-sound.swarm', 0.92, 30_000);
    expect(raised).toMatchObject({ rule: 'swarming', state: 'raised', active: true, severity: 'critical', value: 0.92, threshold: 0.8, since: 0, t: 30_000 });
    expect(raised?.reason).toBe('model.hive-sound.swarm = 0.92 > 0.8, held for 30 s (at least 30 s)');
    expect(engine.active()).toEqual(['swarming']);
  });

  it('restarts the duration when the value dips below the threshold', () => {
    const engine = new RuleEngine(rules);
    engine.observe('model.hive-sound.swarm', 0.9, 0);
    engine.observe('model.hive-sound.swarm', 0.7, 10_000);
    engine.observe('model.hive-sound.swarm', 0.9, 20_000);
    expect(engine.observe('model.hive-sound.swarm', 0.9, 40_000)).toEqual([]);
    expect(engine.observe('model.hive-sound.swarm', 0.9, 50_000)).toHaveLength(1);
  });

  it('clears only past the clear level (hysteresis), once', () => {
    const engine = new RuleEngine(rules);
    engine.observe('model.hive-sound.swarm', 0.9, 0);
    engine.observe('model.hive-sound.swarm', 0.9, 30_000);
    expect(engine.observe('model.hive-sound.swarm', 0.6, 40_000)).toEqual([]);
    const [cleared] = engine.observe('model.hive-sound.swarm', 0.4, 50_000);
    expect(cleared).toMatchObject({ state: 'cleared', active: false, value: 0.4, clearAt: 0.5 });
    expect(engine.observe('model.hive-sound.swarm', 0.3, 60_000)).toEqual([]);
  });

  it('handles "below" rules with no duration, and ignores other inputs and NaN', () => {
    const engine = new RuleEngine(rules);
    expect(engine.observe('reading.humidity', 10, 0)).toEqual([]);
    expect(engine.observe('reading.temperature', Number.NaN, 0)).toEqual([]);
    expect(engine.observe('reading.temperature', 29.5, 1)[0]).toMatchObject({ rule: 'cold', state: 'raised', reason: 'reading.temperature = 29.5 < 30' });
    expect(engine.observe('reading.temperature', 30.5, 2)[0]).toMatchObject({ rule: 'cold', state: 'cleared' });
  });

  it('restores an active decision from a snapshot (it survives a restart)', () => {
    const first = new RuleEngine(rules);
    first.observe('reading.temperature', 20, 1);
    const second = new RuleEngine(rules, first.snapshot());
    expect(second.active()).toEqual(['cold']);
    expect(second.observe('reading.temperature', 20, 2)).toEqual([]);
  });

  it('keeps deciding from a frozen snapshot (the state store hands out frozen state) and ignores malformed saved state', () => {
    const first = new RuleEngine(rules);
    first.observe('reading.temperature', 20, 1);
    const saved = deepFreeze(JSON.parse(JSON.stringify(first.snapshot())) as ReturnType<RuleEngine['snapshot']>);
    const second = new RuleEngine(rules, saved);
    expect(second.observe('reading.temperature', 31, 2)[0]).toMatchObject({ rule: 'cold', state: 'cleared' });
    expect(second.observe('reading.temperature', 20, 3)[0]).toMatchObject({ rule: 'cold', state: 'raised' });
    expect(saved.cold?.active).toBe(true); // the saved copy was not touched
    const damaged = new RuleEngine(rules, { cold: { active: 'yes', pendingSince: 'x', since: null, lastValue: Number.NaN, lastT: null } as never });
    expect(damaged.active()).toEqual([]);
    expect(damaged.observe('reading.temperature', 20, 4)[0]).toMatchObject({ rule: 'cold', state: 'raised' });
  });
});
