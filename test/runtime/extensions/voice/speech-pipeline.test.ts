/**
 * The pipeline's plumbing: arecord and aplay as the microphone and speaker, a
 * stereo 44.1 kHz recording, timings, and the errors a missing microphone or
 * a bad file give.
 *
 * With no sound card here, the microphone is an ALSA `file` plugin whose
 * capture reads a raw file (silence from /dev/zero, or a spoken question),
 * defined in a config given through ALSA_CONFIG_PATH: arecord runs for real,
 * only the hardware is stood in for. (ALSA's `null` device is no microphone:
 * its capture returns uninitialised memory.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { AplaySink } from '../../../../runtime/extensions/voice/aplay-sink.js';
import { ArecordSource } from '../../../../runtime/extensions/voice/arecord-source.js';
import { EnergyEndOfSpeech } from '../../../../runtime/extensions/voice/energy-end-of-speech.js';
import { EspeakTts } from '../../../../runtime/extensions/voice/espeak-tts.js';
import { WavFileSink, WavFileSource } from '../../../../runtime/extensions/voice/file-audio.js';
import { PocketsphinxRecogniser } from '../../../../runtime/extensions/voice/pocketsphinx-recogniser.js';
import { resamplePcm } from '../../../../runtime/extensions/voice/resample.js';
import { runSpeechPipeline } from '../../../../runtime/extensions/voice/speech-pipeline.js';
import type { Recognition, SpeechToIntent } from '../../../../runtime/extensions/voice/types.js';
import { readWavFile, writeWavFile } from '../../../../runtime/extensions/voice/wav.js';
import { espeak, missingPrograms, VOCABULARY } from './speech-tools.js';

const noArecord = await missingPrograms('arecord');
const noSpeech = await missingPrograms('espeak-ng', 'pocketsphinx');

/** A recogniser that must not be reached. */
const unreachable: SpeechToIntent = { recognise: () => Promise.reject(new Error('recognise called without speech')) };

/** Writes an ALSA config defining capture devices that play back raw 16-bit files, and points ALSA at it. */
async function fakeMicrophones(dir: string, devices: Record<string, string>): Promise<void> {
  const lines = ['</usr/share/alsa/alsa.conf>'];
  for (const [name, infile] of Object.entries(devices)) lines.push(`pcm.${name} { type file; slave.pcm "null"; file "/dev/null"; infile "${infile}"; format "raw" }`);
  await writeFile(path.join(dir, 'asound.conf'), `${lines.join('\n')}\n`);
  process.env.ALSA_CONFIG_PATH = path.join(dir, 'asound.conf');
}

describe.skipIf(noArecord !== undefined)(`arecord as the microphone${noArecord ? ` (${noArecord})` : ''}`, () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mic-'));
    await fakeMicrophones(dir, { apiary_silence: '/dev/zero' });
  });
  afterAll(async () => {
    delete process.env.ALSA_CONFIG_PATH;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('captures 16 kHz mono from an ALSA device until its time is up', async () => {
    const source = new ArecordSource({ device: 'apiary_silence', maxSeconds: 1 });
    let samples = 0;
    for await (const chunk of source.read()) samples += chunk.length;
    expect(samples).toBe(16_000);
  });

  it('stops cleanly when told to, long before its time', async () => {
    const source = new ArecordSource({ device: 'apiary_silence', maxSeconds: 30 });
    let chunks = 0;
    for await (const chunk of source.read()) {
      expect(chunk).toBeInstanceOf(Int16Array);
      if (++chunks === 2) source.stop();
    }
    expect(chunks).toBeGreaterThanOrEqual(2);
  });

  it('listens, hears nothing, and gives up without recognising anything', async () => {
    const result = await runSpeechPipeline({
      source: new ArecordSource({ device: 'apiary_silence', maxSeconds: 5 }),
      endOfSpeech: new EnergyEndOfSpeech(),
      recogniser: unreachable,
      tts: new EspeakTts(),
    }, () => Promise.resolve('never'), { maxListenSeconds: 1 });
    expect(result).toEqual({ kind: 'no-speech', listenedSeconds: expect.any(Number) as number });
    expect(result.kind === 'no-speech' && result.listenedSeconds).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(noSpeech !== undefined)('hears a question through arecord and answers it through aplay', async () => {
    const speech = resamplePcm(espeak('is it going to swarm', 'en-us', 160), 16_000);
    const raw = Buffer.alloc((16_000 + speech.length + 32_000) * 2);
    speech.forEach((v, i) => raw.writeInt16LE(v, (16_000 + i) * 2));
    await writeFile(path.join(dir, 'question.raw'), raw);
    await fakeMicrophones(dir, { apiary_silence: '/dev/zero', apiary_question: path.join(dir, 'question.raw') });
    const recogniser = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY });
    try {
      let spoke = false;
      const result = await runSpeechPipeline({
        source: new ArecordSource({ device: 'apiary_question', maxSeconds: 5 }),
        endOfSpeech: new EnergyEndOfSpeech(),
        recogniser,
        tts: new EspeakTts(),
        sink: { play: async (audio, options) => { await new AplaySink({ device: 'null' }).play(audio, options); spoke = audio.samples.length > 0; } },
      }, (r) => Promise.resolve(r.kind === 'intent' ? `You asked ${r.intent.intent}.` : 'I do not know that.'));
      expect(result).toMatchObject({ kind: 'answered', recognition: { kind: 'intent', intent: { intent: 'swarm-risk' } }, answer: 'You asked swarm-risk.' });
      expect(spoke).toBe(true);
    } finally {
      await recogniser.close();
    }
  });

  it('says there is no microphone when the device does not exist, and what is missing when arecord is', async () => {
    const read = async (source: ArecordSource) => {
      for await (const _ of source.read()) void _;
    };
    await expect(read(new ArecordSource({ device: 'apiary_no_such_pcm', maxSeconds: 1 }))).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, message: expect.stringContaining('no microphone at ALSA device "apiary_no_such_pcm"') as string, hint: expect.stringContaining('arecord -l') as string });
    await expect(read(new ArecordSource({ device: 'apiary_silence', program: 'apiary-no-such-arecord' }))).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, hint: 'install it: `sudo apt install alsa-utils`' });
    expect(() => new ArecordSource({ device: '$(reboot)' })).toThrow(/voice input device "\$\(reboot\)" is not an ALSA device name/);
  });
});

describe.skipIf(noSpeech !== undefined)(`the pipeline on a recording${noSpeech ? ` (${noSpeech})` : ''}`, () => {
  let dir = '';
  let recogniser: PocketsphinxRecogniser;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-pipeline-'));
    recogniser = await PocketsphinxRecogniser.create({ vocabulary: VOCABULARY });
  });
  afterAll(async () => {
    await recogniser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('takes a stereo 44.1 kHz file to an intent and a spoken answer, with its timings', async () => {
    // As a phone would record it: 44.1 kHz stereo, the question in both channels, silence around it.
    const mono = resamplePcm(espeak('what is the humidity', 'en-gb-x-rp', 150), 44_100);
    const frames = 44_100 + mono.length + 44_100;
    const stereo = new Int16Array(frames * 2);
    mono.forEach((v, i) => {
      stereo[(44_100 + i) * 2] = v;
      stereo[(44_100 + i) * 2 + 1] = v;
    });
    const file = path.join(dir, 'question.wav');
    await writeWavFile(file, { sampleRate: 44_100, channels: 2, samples: stereo });
    const seen: Recognition[] = [];
    const result = await runSpeechPipeline({
      source: await WavFileSource.open(file),
      endOfSpeech: new EnergyEndOfSpeech(),
      recogniser,
      tts: new EspeakTts(),
      sink: new WavFileSink(path.join(dir, 'answer.wav')),
    }, (r) => {
      seen.push(r);
      return Promise.resolve('The humidity is 62 percent.');
    });
    expect(seen).toEqual([{ kind: 'intent', intent: { text: 'what is the humidity', intent: 'reading', slots: { channel: 'humidity' } } }]);
    if (result.kind !== 'answered') throw new Error(`no utterance found: ${JSON.stringify(result)}`);
    // The utterance is where the speech was: after the 1 s of silence, within the file.
    expect(result.utterance.start).toBeGreaterThan(0.5);
    expect(result.utterance.start).toBeLessThan(1.1);
    expect(result.utterance.end).toBeLessThan(frames / 44_100);
    expect(result.answer).toBe('The humidity is 62 percent.');
    for (const key of ['recogniseMs', 'answerMs', 'synthesiseMs', 'endOfSpeechToAnswerMs'] as const) expect(result.timings[key]).toEqual(expect.any(Number) as number);
    const answer = await readWavFile(path.join(dir, 'answer.wav'));
    expect(answer.samples.length / answer.sampleRate).toBeGreaterThan(1);
  });

  it('says nothing when the answerer has nothing to say', async () => {
    const file = path.join(dir, 'q2.wav');
    const speech = espeak('how heavy is it');
    await writeWavFile(file, { ...speech, samples: Int16Array.from([...new Int16Array(11_025), ...speech.samples, ...new Int16Array(22_050)]) });
    const sinkFile = path.join(dir, 'never.wav');
    const result = await runSpeechPipeline({ source: await WavFileSource.open(file), endOfSpeech: new EnergyEndOfSpeech(), recogniser, tts: new EspeakTts(), sink: new WavFileSink(sinkFile) }, () => Promise.resolve(undefined));
    expect(result).toMatchObject({ kind: 'answered', answer: undefined, timings: { endOfSpeechToAnswerMs: null } });
    await expect(readWavFile(sinkFile)).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID });
  });

  it('refuses a file that is not audio before listening', async () => {
    const file = path.join(dir, 'notes.wav');
    await writeFile(file, 'these are my notes');
    await expect(WavFileSource.open(file)).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID, message: expect.stringContaining('notes.wav: not a WAV file') as string });
  });
});
