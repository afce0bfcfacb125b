/**
 * The energy end-of-speech detector on real speech (espeak-ng, resampled to
 * 16 kHz) padded with silence or noise, and on what is not speech.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS, EnergyEndOfSpeech, levelDb } from '../../../../runtime/extensions/voice/energy-end-of-speech.js';
import { resamplePcm } from '../../../../runtime/extensions/voice/resample.js';
import type { EndOfSpeechEvent, SpeechSegment } from '../../../../runtime/extensions/voice/types.js';
import { espeak, missingPrograms } from './speech-tools.js';

const RATE = 16_000;
const missing = await missingPrograms('espeak-ng');

function noise(n: number, amplitude: number, seed = 1): Int16Array {
  let s = seed;
  return Int16Array.from({ length: n }, () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return Math.round((s / 2 ** 32 - 0.5) * 2 * amplitude);
  });
}

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function mix(a: Int16Array, b: Int16Array): Int16Array {
  return Int16Array.from(a, (v, i) => Math.max(-32768, Math.min(32767, v + (b[i] ?? 0))));
}

/** Feeds `audio` in 30 ms chunks (not a multiple of the 20 ms frame) and collects the events. */
function run(audio: Int16Array, detector = new EnergyEndOfSpeech()): { events: EndOfSpeechEvent[]; flushed: SpeechSegment | undefined } {
  const events: EndOfSpeechEvent[] = [];
  for (let at = 0; at < audio.length; at += 480) {
    const e = detector.push(audio.subarray(at, at + 480));
    if (e) events.push(e);
  }
  return { events, flushed: detector.flush() };
}

/** Where speech really is: the first and last sample over -50 dBFS in 10 ms windows. */
function speechBounds(speech: Int16Array): { start: number; end: number } {
  const loud: number[] = [];
  for (let at = 0; at + 160 <= speech.length; at += 160) if (levelDb(speech.subarray(at, at + 160)) > -50) loud.push(at);
  return { start: loud[0] ?? 0, end: (loud.at(-1) ?? 0) + 160 };
}

describe.skipIf(missing !== undefined)(`end of speech on espeak-ng speech${missing ? ` (${missing})` : ''}`, () => {
  const speech = resamplePcm(espeak('why did you raise that alert', 'en-us', 160), RATE);
  const bounds = speechBounds(speech);
  const lead = RATE; // 1 s before

  it('finds the question between silences, keeping its first and last phones', () => {
    const audio = concat(new Int16Array(lead), speech, new Int16Array(2 * RATE));
    const { events } = run(audio);
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    const end = events[1];
    if (end?.kind !== 'end') throw new Error('no end');
    expect(end.segment.start).toBeLessThanOrEqual(lead + bounds.start);
    expect(end.segment.start).toBeGreaterThanOrEqual(lead + bounds.start - (DEFAULT_THRESHOLDS.preRollMs + 100) * 16);
    expect(end.segment.end).toBeGreaterThanOrEqual(lead + bounds.end);
    expect(end.segment.end).toBeLessThanOrEqual(lead + bounds.end + (DEFAULT_THRESHOLDS.postRollMs + 100) * 16);
  });

  it('does the same under steady noise at -45 dBFS, which is not taken for speech', () => {
    const audio = concat(new Int16Array(lead), speech, new Int16Array(2 * RATE));
    const { events } = run(mix(audio, noise(audio.length, 320)));
    expect(events.map((e) => e.kind)).toEqual(['start', 'end']);
    const end = events[1];
    if (end?.kind !== 'end') throw new Error('no end');
    expect(end.segment.start).toBeGreaterThan(lead - DEFAULT_THRESHOLDS.preRollMs * 16 - 2_000);
    expect(end.segment.end).toBeGreaterThanOrEqual(lead + bounds.end - 1_600);
    expect(end.segment.end - end.segment.start).toBeLessThan(speech.length + RATE);
  });

  it('waits for the pauses between words: two questions a long pause apart are two utterances', () => {
    const audio = concat(new Int16Array(lead), speech, new Int16Array(RATE), speech, new Int16Array(RATE));
    const detector = new EnergyEndOfSpeech();
    const first = run(audio, detector).events;
    expect(first.map((e) => e.kind)).toEqual(['start', 'end']);
    const end = first[1];
    if (end?.kind !== 'end') throw new Error('no end');
    // The first utterance ends before the second starts.
    expect(end.segment.end).toBeLessThan(lead + speech.length + RATE);
    detector.reset();
    expect(run(audio.subarray(end.segment.end), detector).events.map((e) => e.kind)).toEqual(['start', 'end']);
  });

  it('hands over speech cut off by the end of the recording on flush', () => {
    const { events, flushed } = run(concat(new Int16Array(lead), speech));
    expect(events.map((e) => e.kind)).toEqual(['start']);
    expect(flushed?.start).toBeLessThanOrEqual(lead + bounds.start);
    expect(flushed?.end).toBeGreaterThanOrEqual(lead + bounds.end);
    expect(flushed?.end).toBeLessThanOrEqual(lead + speech.length);
  });
});

describe('end of speech on what is not speech', () => {
  it('finds nothing in silence or steady noise', () => {
    expect(run(new Int16Array(3 * RATE))).toEqual({ events: [], flushed: undefined });
    expect(run(noise(3 * RATE, 2_000))).toEqual({ events: [], flushed: undefined });
  });

  it('takes a click or a cough under 200 ms of sound for nothing', () => {
    const click = noise(RATE / 10, 12_000, 5);
    const audio = concat(new Int16Array(RATE), click, new Int16Array(2 * RATE));
    const { events, flushed } = run(audio);
    expect(events.filter((e) => e.kind === 'end')).toEqual([]);
    expect(flushed).toBeUndefined();
  });

  it('ends an utterance at 10 s even if the talking goes on', () => {
    // Syllable-like bursts with short gaps: never 600 ms quiet, and the gaps keep the noise floor low.
    const bursts = Array.from({ length: 40 }, (_, i) => concat(noise(RATE * 0.3, 8_000, i + 1), new Int16Array(RATE * 0.1)));
    const { events } = run(concat(new Int16Array(RATE), ...bursts));
    const end = events.find((e) => e.kind === 'end');
    if (end?.kind !== 'end') throw new Error(`no end in ${JSON.stringify(events)}`);
    expect(end.segment.end - end.segment.start).toBeLessThanOrEqual(DEFAULT_THRESHOLDS.maxSpeechMs * 16);
    expect(end.segment.end - end.segment.start).toBeGreaterThan((DEFAULT_THRESHOLDS.maxSpeechMs - 500) * 16);
  });

  it('measures levels in dBFS', () => {
    expect(levelDb(new Int16Array(160))).toBe(-100);
    expect(levelDb(new Int16Array(160).fill(32767))).toBeCloseTo(0, 1);
    expect(levelDb(new Int16Array(160).fill(328))).toBeCloseTo(-40, 0);
  });
});
