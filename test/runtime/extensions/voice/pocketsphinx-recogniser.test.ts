/**
 * The pocketsphinx recogniser's edges: what its output looks like in both
 * command-line flavours, what happens without the program or the model, and
 * that a run is bounded (time, abort). The recognition itself is in
 * speech-end-to-end.test.ts.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { flavourOf, parseHypotheses, PocketsphinxRecogniser } from '../../../../runtime/extensions/voice/pocketsphinx-recogniser.js';
import { resamplePcm } from '../../../../runtime/extensions/voice/resample.js';
import { unexplainedSpeech } from '../../../../runtime/extensions/voice/speech-coverage.js';
import { espeak, missingPrograms, VOCABULARY } from './speech-tools.js';

const missing = await missingPrograms('pocketsphinx', 'espeak-ng');

describe('pocketsphinx output', () => {
  it('reads pocketsphinx_continuous -time yes: the text, then a line per word with its times', () => {
    const out = 'how is the hive\n<sil> 0.000 0.290 1.000000\nhow 0.300 0.520 1.000000\nthe(2) 0.700 0.820 1.000000\n(NULL) 1.200 1.200 1.000000\n';
    expect(parseHypotheses('continuous', out)).toEqual({
      text: 'how is the hive',
      words: [{ word: '<sil>', start: 0, end: 0.29 }, { word: 'how', start: 0.3, end: 0.52 }, { word: 'the', start: 0.7, end: 0.82 }, { word: '(NULL)', start: 1.2, end: 1.2 }],
      utterances: 1,
    });
    expect(parseHypotheses('continuous', '')).toEqual({ text: '', words: undefined, utterances: 0 });
    // Split at a pause: the parts are joined, and times (each from its own part's start) are not used.
    expect(parseHypotheses('continuous', 'how heavy\nhow 0.1 0.2 1\nis it\nis 0.1 0.2 1\n')).toEqual({ text: 'how heavy is it', words: undefined, utterances: 2 });
  });

  it('reads pocketsphinx 5 JSON lines, and skips lines that are not', () => {
    const out = '{"b":0.000,"d":1.830,"p":1.000,"t":"how is the hive","w":[{"b":0.000,"d":0.290,"p":1.000,"t":"<sil>"},{"b":0.300,"d":0.220,"p":1.000,"t":"how"}]}\nwarning: something\n';
    expect(parseHypotheses('v5', out)).toEqual({ text: 'how is the hive', words: [{ word: '<sil>', start: 0, end: 0.29 }, { word: 'how', start: 0.3, end: 0.52 }], utterances: 1 });
    expect(parseHypotheses('v5', '{"b":0.000,"d":0.010,"p":1.000,"t":"","w":[]}\n')).toEqual({ text: '', words: undefined, utterances: 0 });
    expect(flavourOf('/usr/bin/pocketsphinx')).toBe('v5');
    expect(flavourOf('/usr/bin/pocketsphinx_continuous')).toBe('continuous');
  });

  it('counts loud audio outside every recognised word', () => {
    const loud = Int16Array.from({ length: 16_000 }, (_, i) => (i >= 4_000 && i < 12_000 ? (i % 2 ? 8_000 : -8_000) : 0));
    expect(unexplainedSpeech(loud, [{ word: 'how', start: 0.25, end: 0.75 }])).toBe(0);
    expect(unexplainedSpeech(loud, [{ word: 'how', start: 0.25, end: 0.5 }])).toBeCloseTo(0.24, 2);
    // Silence tokens explain nothing.
    expect(unexplainedSpeech(loud, [{ word: '<sil>', start: 0, end: 1 }])).toBeCloseTo(0.5, 2);
  });
});

describe('pocketsphinx missing', () => {
  it('names the program and the apt line when it is not installed', async () => {
    await expect(PocketsphinxRecogniser.create({ vocabulary: VOCABULARY, program: 'apiary-no-such-pocketsphinx' })).rejects.toMatchObject({
      code: ErrorCodes.VOICE_UNAVAILABLE,
      message: expect.stringContaining('apiary-no-such-pocketsphinx') as string,
      hint: 'install it: `sudo apt install pocketsphinx pocketsphinx-en-us`',
    });
  });

  it.skipIf(missing !== undefined)('names the model package when the model is not there', async () => {
    await expect(PocketsphinxRecogniser.create({ vocabulary: VOCABULARY, modelDir: '/nonexistent/en-us' })).rejects.toMatchObject({
      code: ErrorCodes.VOICE_UNAVAILABLE,
      message: expect.stringContaining('/nonexistent/en-us/en-us/mdef') as string,
      hint: expect.stringContaining('sudo apt install pocketsphinx-en-us') as string,
    });
  });
});

describe.skipIf(missing !== undefined)(`pocketsphinx runs, bounded${missing ? ` (${missing})` : ''}`, () => {
  let recogniser: PocketsphinxRecogniser;
  let dir = '';
  const question = resamplePcm(espeak('is it going to swarm'), 16_000);

  beforeAll(async () => {
    recogniser = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY });
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-ps-'));
  });
  afterAll(async () => {
    await recogniser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('recognises a question, and rejects empty and over-long audio without running', async () => {
    expect(await recogniser.recognise(question)).toEqual({ kind: 'intent', intent: { text: 'is it going to swarm', intent: 'swarm-risk', slots: {} } });
    expect(await recogniser.recognise(new Int16Array(0))).toEqual({ kind: 'rejected', reason: 'no audio' });
    await expect(recogniser.recognise(new Int16Array(16 * 16_000))).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID, message: expect.stringContaining('16.0 s is over the 15 s') as string });
  });

  it('recognises questions padded with digital silence (exact zeros, as a synthesised or edited file has)', async () => {
    const cases = ['en-us', 'en-gb-x-rp', 'en-029'].flatMap((voice) => ['what is the brood temperature', 'why did you raise that alert', 'what do the neighbours say'].map((text) => ({ voice, text })));
    let right = 0;
    for (const { voice, text } of cases) {
      const speech = resamplePcm(espeak(text, voice, 175), 16_000);
      const padded = new Int16Array(speech.length + 16_000);
      padded.set(speech, 8_000);
      const r = await recogniser.recognise(padded);
      if (r.kind === 'intent' && r.intent.text === text) right++;
    }
    expect(right).toBeGreaterThanOrEqual(cases.length - 1);
  });

  it('kills the program on abort and on timeout', async () => {
    const controller = new AbortController();
    const pending = recogniser.recognise(question, controller.signal);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: expect.stringMatching(/aborted/) as string });
    const hasty = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY, timeoutMs: 1 });
    try {
      await expect(hasty.recognise(question)).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: expect.stringContaining('did not finish within 0.001 s') as string });
    } finally {
      await hasty.close();
    }
  });

  it('runs pocketsphinx 5\'s command line: `single <file>`, JSON out (a stand-in script, since this machine has 0.8)', async () => {
    // The stand-in checks the arguments the recogniser passes and answers as pocketsphinx 5 does.
    const fake = path.join(dir, 'pocketsphinx');
    await writeFile(fake, [
      '#!/bin/sh',
      'for last; do :; done',
      'case " $* " in *" -jsgf "*" single "*) ;; *) echo "bad args: $*" >&2; exit 2;; esac',
      '[ -s "$last" ] || { echo "no file $last" >&2; exit 3; }',
      'echo \'{"b":0.000,"d":1.000,"p":1.000,"t":"how heavy is it","w":[{"b":0.0,"d":2.5,"p":1.0,"t":"how"}]}\'',
    ].join('\n'));
    await chmod(fake, 0o755);
    const v5 = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY, program: fake });
    try {
      expect(v5.flavour).toBe('v5');
      expect(await v5.recognise(question)).toEqual({ kind: 'intent', intent: { text: 'how heavy is it', intent: 'weight', slots: {} } });
    } finally {
      await v5.close();
    }
  });
});
