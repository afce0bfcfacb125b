/**
 * The whole speech path without a microphone, on the Debian programs a node
 * uses: espeak-ng speaks each question in several voices and at two speeds
 * into WAV files (with silence and a little noise around it, as a microphone
 * would give); the pipeline reads each file, resamples it to 16 kHz, finds
 * the end of speech, recognises it with pocketsphinx against the grammar made
 * from the vocabulary, answers, and speaks the answer with espeak-ng into
 * another WAV file, which sox must find long and loud enough to be speech.
 *
 * Synthetic voices are not people: the figure to hold is the issue's (at
 * least 90 % right over the set), and what matters as much is that
 * out-of-grammar speech is rejected, not forced into a question.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnergyEndOfSpeech } from '../../../../runtime/extensions/voice/energy-end-of-speech.js';
import { EspeakTts } from '../../../../runtime/extensions/voice/espeak-tts.js';
import { WavFileSink, WavFileSource } from '../../../../runtime/extensions/voice/file-audio.js';
import { PocketsphinxRecogniser } from '../../../../runtime/extensions/voice/pocketsphinx-recogniser.js';
import { runSpeechPipeline, type PipelineResult } from '../../../../runtime/extensions/voice/speech-pipeline.js';
import type { Pcm, Recognition } from '../../../../runtime/extensions/voice/types.js';
import { writeWavFile } from '../../../../runtime/extensions/voice/wav.js';
import { DEFAULT_RULES } from '../../../../runtime/apps/beehive/defaults.js';
import { buildVocabulary } from '../../../../runtime/extensions/ask/catalogue.js';
import { espeak, espeakVoices, missingPrograms, soxStat } from './speech-tools.js';

/**
 * The node's own vocabulary (the ask extension's catalogue), for a simulated
 * beehive with its default rules and two named neighbours: the grammar the
 * recogniser gets on a real node.
 */
const VOCABULARY = buildVocabulary({
  channels: [
    { name: 'temperature', label: 'Hive temperature' },
    { name: 'humidity', label: 'Hive humidity' },
    { name: 'weight', label: 'Hive weight' },
    { name: 'sound_level', label: 'Hive sound level' },
  ],
  rules: DEFAULT_RULES.map((r) => ({ id: r.id, input: r.input })),
  neighbours: [{ nodeId: 'abcdefghijkl', name: 'North hive' }, { nodeId: 'mnopqrstuvwx', name: 'Meadow hive' }],
  mesh: true,
  modelLabels: ['normal', 'pre-swarm', 'swarm', 'strong_colony'],
}).vocabulary;

const missing = await missingPrograms('espeak-ng', 'pocketsphinx', 'sox');

const QUESTIONS: readonly { text: string; intent: string; slots?: Record<string, string> }[] = [
  { text: 'how is the hive', intent: 'hive-status' },
  { text: 'is it going to swarm', intent: 'swarm-risk' },
  { text: 'how heavy is it', intent: 'weight' },
  { text: 'what is the temperature', intent: 'reading', slots: { channel: 'temperature' } },
  { text: 'what is the humidity', intent: 'reading', slots: { channel: 'humidity' } },
  { text: 'what is the sound level', intent: 'reading', slots: { channel: 'sound level' } },
  { text: 'why did you raise that alert', intent: 'why' },
  { text: 'what do the neighbours say', intent: 'neighbours' },
];
/** The first two must always be rejected; over all of them, at least MIN_REJECTED. */
const OUT_OF_GRAMMAR = ['the weather is nice in paris today', 'play some music', 'turn off the lights in the kitchen', 'what time is it',
  'hello there how are you', 'open the garage door', 'tell me a joke', 'set a timer for five minutes'];
const MIN_REJECTED = 0.85;
const WANTED_VOICES = ['en-us', 'en-gb-x-rp', 'en-gb-scotland', 'en-029'];
const SPEEDS = [140, 190];
/** 64 + 24 utterances through pocketsphinx, two at a time: about 15 s alone, more on a busy machine (not a timing assertion). */
const SLOW = 180_000;

/** Deterministic noise, so a failure can be reproduced. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** Speech with 0.6 s before and 1.2 s after, under noise at about -60 dBFS: what a push-to-talk microphone gives. */
function asRecorded(speech: Pcm, seed: number): Pcm {
  const before = Math.round(speech.sampleRate * 0.6);
  const after = Math.round(speech.sampleRate * 1.2);
  const samples = new Int16Array(before + speech.samples.length + after);
  samples.set(speech.samples, before);
  const rand = noise(seed);
  for (let i = 0; i < samples.length; i++) samples[i] = Math.max(-32768, Math.min(32767, (samples[i] ?? 0) + Math.round(rand() * 110)));
  return { ...speech, samples };
}

const ANSWERS: Record<string, string> = {
  'hive-status': 'The hive is calm. Brood temperature 34.6 degrees Celsius, weight 41.2 kilograms.',
  'swarm-risk': 'No swarm expected: the swarm model gives 8 percent.',
  weight: 'The hive weighs 41.2 kilograms, up 0.3 kilograms today.',
  reading: 'It is 34.6 degrees Celsius.',
  why: 'I raised the cold brood alert because the brood temperature fell below 32 degrees.',
  neighbours: 'Two neighbours, no alerts.',
};

function answer(r: Recognition): Promise<string> {
  return Promise.resolve(r.kind === 'intent' ? (ANSWERS[r.intent.intent] ?? 'I do not know that.') : 'I do not know that.');
}

/** Runs `jobs` two at a time: the machine is shared, and a board has few cores. */
async function pool<T>(jobs: (() => Promise<T>)[], width = 2): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await (jobs[i] as () => Promise<T>)();
    }
  }));
  return results;
}

describe.skipIf(missing !== undefined)(`speech to intent and back, end to end${missing ? ` (${missing})` : ''}`, () => {
  let dir = '';
  let recogniser: PocketsphinxRecogniser;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-voice-e2e-'));
    recogniser = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY, maxConcurrent: 2 });
  });

  afterAll(async () => {
    await recogniser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function runFile(file: string, answerFile: string): Promise<PipelineResult> {
    return runSpeechPipeline({
      source: await WavFileSource.open(file),
      endOfSpeech: new EnergyEndOfSpeech(),
      recogniser,
      tts: new EspeakTts({ voice: 'en-gb', speed: 170 }),
      sink: new WavFileSink(answerFile),
    }, answer);
  }

  it('gets at least 90 % of the questions right over voices and speeds, and speaks every answer', async () => {
    const available = espeakVoices();
    const voices = WANTED_VOICES.filter((v) => available.has(v));
    expect(voices.length, `espeak-ng has too few of ${WANTED_VOICES.join(', ')}`).toBeGreaterThanOrEqual(3);
    const cases = voices.flatMap((voice) => SPEEDS.flatMap((speed) => QUESTIONS.map((q, i) => ({ voice, speed, q, i }))));
    const results = await pool(cases.map((c, n) => async () => {
      const file = path.join(dir, `q-${c.voice}-${c.speed}-${c.i}.wav`);
      await writeWavFile(file, asRecorded(espeak(c.q.text, c.voice, c.speed), n + 1));
      const answerFile = path.join(dir, `a-${n}.wav`);
      return { ...c, answerFile, result: await runFile(file, answerFile) };
    }));

    const right = (r: (typeof results)[number]) => r.result.kind === 'answered' && r.result.recognition.kind === 'intent'
      && r.result.recognition.intent.intent === r.q.intent && JSON.stringify(r.result.recognition.intent.slots) === JSON.stringify(r.q.slots ?? {});
    const table = voices.flatMap((voice) => SPEEDS.map((speed) => {
      const rows = results.filter((r) => r.voice === voice && r.speed === speed);
      return `${voice} at ${speed} wpm: ${rows.filter(right).length}/${rows.length}`;
    }));
    const wrong = results.filter((r) => !right(r)).map((r) => `${r.voice}/${r.speed} "${r.q.text}" -> ${r.result.kind === 'answered' ? JSON.stringify(r.result.recognition) : 'no speech found'}`);
    const cpu = results.flatMap((r) => (r.result.kind === 'answered' && r.result.timings.childCpuMs !== null ? [r.result.timings.childCpuMs] : []));
    console.log(`intent accuracy: ${results.filter(right).length}/${results.length}\n  ${table.join('\n  ')}\n  wrong: ${wrong.join('\n    ') || 'none'}\n  child CPU per exchange (pocketsphinx + espeak-ng, 2 at a time so approximate): mean ${(cpu.reduce((a, b) => a + b, 0) / Math.max(cpu.length, 1)).toFixed(0)} ms`);
    expect(results.filter(right).length / results.length, wrong.join('\n')).toBeGreaterThanOrEqual(0.9);

    // Every exchange found its utterance and said something, into a WAV file with speech in it.
    for (const r of results) {
      expect(r.result.kind).toBe('answered');
      const stat = soxStat(r.answerFile);
      expect(stat.seconds, r.answerFile).toBeGreaterThan(0.8);
      expect(stat.rms, r.answerFile).toBeGreaterThan(0.02);
    }
  }, SLOW);

  it('rejects speech outside the grammar instead of forcing it into a question', async () => {
    const cases = ['en-us', 'en-gb-x-rp', 'en-gb-scotland'].filter((v) => espeakVoices().has(v)).flatMap((voice) => OUT_OF_GRAMMAR.map((text, i) => ({ voice, text, i })));
    const results = await pool(cases.map((c, n) => async () => {
      const file = path.join(dir, `oog-${c.voice}-${c.i}.wav`);
      await writeWavFile(file, asRecorded(espeak(c.text, c.voice), 100 + n));
      return { ...c, result: await runFile(file, path.join(dir, `oog-answer-${n}.wav`)) };
    }));
    const rejected = (r: (typeof results)[number]) => r.result.kind === 'answered' && r.result.recognition.kind === 'rejected';
    const forced = results.filter((r) => !rejected(r)).map((r) => `${r.voice} "${r.text}" -> ${r.result.kind === 'answered' ? JSON.stringify(r.result.recognition) : r.result.kind}`);
    console.log(`out of grammar rejected: ${results.filter(rejected).length}/${results.length}\n  taken for a question: ${forced.join('\n    ') || 'none'}`);
    for (const r of results) {
      // Every one was heard as speech and answered: a rejection is answered too.
      expect(r.result.kind, r.text).toBe('answered');
      if (r.result.kind === 'answered' && r.result.recognition.kind === 'rejected') expect(r.result.answer).toBe('I do not know that.');
    }
    for (const r of results.filter((x) => OUT_OF_GRAMMAR.slice(0, 2).includes(x.text))) {
      expect(rejected(r), `${r.voice} "${r.text}" must be rejected`).toBe(true);
    }
    expect(results.filter(rejected).length / results.length, forced.join('\n')).toBeGreaterThanOrEqual(MIN_REJECTED);
  }, SLOW);

  it('finds no utterance in silence with noise, and says nothing', async () => {
    const file = path.join(dir, 'noise.wav');
    await writeWavFile(file, asRecorded({ sampleRate: 22_050, channels: 1, samples: new Int16Array(22_050) }, 7));
    const result = await runFile(file, path.join(dir, 'noise-answer.wav'));
    expect(result).toMatchObject({ kind: 'no-speech' });
  });
});
