/**
 * Numbers, units and trends in both forms; announcements of decisions; the
 * ask commands as `apiary commands` declares them with no node.
 */
import { describe, expect, it } from 'vitest';
import { CommandRegistry } from '../../../../runtime/commands/command-registry.js';
import type { Decision } from '../../../../runtime/decide/rule-engine.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { announce, announced } from '../../../../runtime/extensions/ask/announce.js';
import { declareAskCommands } from '../../../../runtime/extensions/ask/commands.js';
import { percent, quantity, span, trendOf } from '../../../../runtime/extensions/ask/spoken.js';

const series = (values: number[]) => values.map((value, i) => ({ value, t: i * 60_000 }));

describe('spoken forms', () => {
  it('rounds to one decimal at most, with the unit as a symbol to read and as words to speak', () => {
    expect(quantity(34.512, '°C', 2)).toEqual({ text: '34.5 °C', speech: '34.5 degrees Celsius' });
    expect(quantity(61.26, '%', 1)).toEqual({ text: '61.3%', speech: '61.3 percent' });
    expect(quantity(38.049, 'kg', 2)).toEqual({ text: '38.0 kg', speech: '38.0 kilograms' });
    expect(quantity(-31.24, 'dBFS')).toEqual({ text: '-31.2 dBFS', speech: 'minus 31.2 decibels' });
    expect(quantity(-0.04, '°C')).toEqual({ text: '0.0 °C', speech: '0.0 degrees Celsius' });
    expect(quantity(1013.4, 'hPa', 0)).toEqual({ text: '1013 hPa', speech: '1013 hectopascals' });
    expect(quantity(7, 'furlongs')).toEqual({ text: '7.0 furlongs', speech: '7.0 furlongs' });
    expect(percent(0.934)).toEqual({ text: '93%', speech: '93 percent' });
  });

  it('says spans of node time in the largest unit that fits', () => {
    expect(span(1_000)).toBe('1 second');
    expect(span(60_000)).toBe('60 seconds');
    expect(span(59 * 60_000)).toBe('59 minutes');
    expect(span(3 * 3_600_000)).toBe('3 hours');
    expect(span(3 * 86_400_000)).toBe('3 days');
  });

  it('reads a trend from the oldest and newest thirds: one noisy reading is no trend, a change within 1% is steady', () => {
    expect(trendOf(series([38, 38.2]))).toBeUndefined();
    expect(trendOf(series([38.0, 38.1, 38.3, 38.5, 38.8, 39.0]))).toMatchObject({ direction: 'rising', spanMs: 300_000, count: 6 });
    expect(trendOf(series([39.0, 38.8, 38.5, 38.3, 38.1, 38.0]))?.direction).toBe('falling');
    expect(trendOf(series([38.0, 38.1, 38.0, 38.1, 38.0, 38.1]))?.direction).toBe('steady');
    expect(trendOf(series([38.0, 38.0, 45.0, 38.0, 38.0, 38.0]))?.direction).toBe('steady');
    const change = trendOf(series([10, 10, 12, 12]))?.change;
    expect(change).toBeCloseTo(2);
  });
});

describe('announcements', () => {
  const decision = (over: Partial<Decision>): Decision => ({
    rule: 'hive-overheating', state: 'raised', active: true, severity: 'critical', message: 'The hive is overheating',
    reason: 'reading.temperature = 38.62 > 38, held for 10.5 min (at least 10.0 min)', input: 'reading.temperature',
    value: 38.62, threshold: 38, clearAt: 37, since: 0, t: 630_000, ...over,
  });

  it('tells a raised decision with its reason: the recorded one to read, the same facts in words to speak', () => {
    expect(announce(decision({}), '°C')).toEqual({
      text: 'Alert: The hive is overheating. Hive overheating (critical) was raised because reading.temperature = 38.62 > 38, held for 10.5 min (at least 10.0 min).',
      speech: 'Alert. The hive is overheating. It was raised because the temperature was 38.6 degrees Celsius, above 38.0 degrees Celsius, for 11 minutes.',
    });
    const weak = announce(decision({ rule: 'colony-weak', severity: 'warning', message: 'The hive temperature looks like a weak colony: have a look inside', input: 'model.hive-thermal.strong_colony', value: 0.21, threshold: 0.3, reason: 'model.hive-thermal.strong_colony = 0.21 < 0.3, held for 6.0 h (at least 6.0 h)', t: 6 * 3_600_000 }));
    expect(weak.speech).toBe("Warning. The hive temperature looks like a weak colony: have a look inside. It was raised because the hive thermal model's strong colony score was 21 percent, below 30 percent, for 6 hours.");
  });

  it('announces only raised decisions of the configured severities', () => {
    expect(announced(decision({}), ['warning', 'critical'])).toBe(true);
    expect(announced(decision({ severity: 'info' }), ['warning', 'critical'])).toBe(false);
    expect(announced(decision({ state: 'cleared', active: false }), ['critical'])).toBe(false);
    expect(announced(decision({}), [])).toBe(false);
  });
});

describe('the ask commands with no node', () => {
  it('are declared for `apiary commands`, and answer that they are off', async () => {
    const registry = new CommandRegistry();
    declareAskCommands(registry);
    expect(registry.list().map((c) => c.name)).toEqual(['ask', 'intents', 'readings/recent', 'readings/range', 'mesh/decisions']);
    expect(registry.list().every((c) => !c.write)).toBe(true);
    expect(await registry.run('ask', { question: 'how is the hive' })).toEqual({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'questions are off on this node (ask.enabled)' });
    expect(await registry.run('mesh/decisions', {})).toEqual({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'questions are off on this node (ask.enabled)' });
  });
});
