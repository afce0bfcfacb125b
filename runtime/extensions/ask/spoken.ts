/**
 * Numbers, units, spans and trends in two forms: `text` to read ("34.5 °C")
 * and `speech` for a speech engine ("34.5 degrees Celsius"). Rounded for a
 * person standing at the hive: one decimal at most, never more than the
 * channel is worth.
 */

export interface Said {
  readonly text: string;
  readonly speech: string;
}

const UNIT_WORDS: Readonly<Record<string, string>> = {
  '°C': 'degrees Celsius', '°F': 'degrees Fahrenheit', '%': 'percent', kg: 'kilograms', g: 'grams', lb: 'pounds',
  hPa: 'hectopascals', Pa: 'pascals', dBFS: 'decibels', dB: 'decibels', 'dB(A)': 'decibels', lx: 'lux', V: 'volts', mV: 'millivolts',
  A: 'amperes', mA: 'milliamperes', W: 'watts', ppm: 'parts per million', 'm/s': 'metres per second', mm: 'millimetres', cm: 'centimetres',
  Hz: 'hertz', s: 'seconds', ms: 'milliseconds',
};

/** Decimals shown: one at most (and none for a channel that has none). */
export function decimalsFor(precision = 1): number {
  return Math.max(0, Math.min(1, Math.floor(precision)));
}

/** `value` rounded to `decimals`, without a "-0". */
export function rounded(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  return Number(text) === 0 ? (0).toFixed(decimals) : text;
}

/** A number with its unit: "34.5 °C" / "34.5 degrees Celsius"; "-31.2 dBFS" / "minus 31.2 decibels". */
export function quantity(value: number, unit: string, precision?: number): Said {
  const n = rounded(value, decimalsFor(precision));
  const text = unit === '' ? n : unit === '%' ? `${n}%` : `${n} ${unit}`;
  const words = UNIT_WORDS[unit] ?? unit;
  const spokenNumber = n.startsWith('-') ? `minus ${n.slice(1)}` : n;
  return { text, speech: words === '' ? spokenNumber : `${spokenNumber} ${words}` };
}

/** A probability as a whole percentage: "93%" / "93 percent". */
export function percent(p: number): Said {
  const n = String(Math.round(p * 100));
  return { text: `${n}%`, speech: `${n} percent` };
}

/** A span of node time: "40 seconds", "12 minutes", "3 hours", "2 days" (the same in both forms). */
export function span(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (s < 90) return unit(Math.round(s), 'second');
  if (s < 90 * 60) return unit(Math.round(s / 60), 'minute');
  if (s < 36 * 3600) return unit(Math.round(s / 3600), 'hour');
  return unit(Math.round(s / 86_400), 'day');
}

export interface Trend {
  readonly direction: 'rising' | 'falling' | 'steady';
  /** Mean of the newest third minus mean of the oldest third. */
  readonly change: number;
  /** Node time between the oldest and newest reading used. */
  readonly spanMs: number;
  readonly count: number;
}

/**
 * Rising, falling or steady over `readings` (oldest first): the newest third
 * against the oldest third, so one noisy reading does not make a trend. A
 * change within 1% of the level, or within one shown step, is steady.
 * Undefined with fewer than three readings.
 */
export function trendOf(readings: readonly { readonly value: number; readonly t: number }[], precision?: number): Trend | undefined {
  if (readings.length < 3) return undefined;
  const third = Math.max(1, Math.floor(readings.length / 3));
  const mean = (xs: readonly { value: number }[]) => xs.reduce((sum, r) => sum + r.value, 0) / xs.length;
  const change = mean(readings.slice(-third)) - mean(readings.slice(0, third));
  const level = Math.abs(mean(readings));
  const step = 10 ** -decimalsFor(precision);
  const direction = Math.abs(change) < Math.max(0.01 * level, step) ? 'steady' : change > 0 ? 'rising' : 'falling';
  return { direction, change, spanMs: (readings.at(-1)?.t ?? 0) - (readings[0]?.t ?? 0), count: readings.length };
}

/** "a, b and c". */
export function list(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`;
}

/** Joins sentences of both forms. */
export function sentences(parts: readonly Said[]): Said {
  return { text: parts.map((p) => p.text).join(' '), speech: parts.map((p) => p.speech).join(' ') };
}

/** The same words in both forms. */
export const plain = (text: string): Said => ({ text, speech: text });
