/**
 * One spoken exchange: audio source -> 16 kHz mono -> end of speech ->
 * recognition -> the answer's text (a callback: the text front owns answers)
 * -> speech -> sink. The source is stopped as soon as the utterance ends, so
 * the microphone is held only while someone speaks.
 *
 * It returns what it heard and said with the timings the benchmark reports:
 * the latency a beekeeper feels is from the end of their speech to the start
 * of the answer, which is recognition + answer + synthesis (the detector's
 * hangover comes before it, and is fixed by its thresholds).
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { childCpuMs } from './cpu-time.js';
import { Resampler } from './resample.js';
import { SPEECH_RATE, type AudioSink, type AudioSource, type EndOfSpeech, type Recognition, type SpeechSegment, type SpeechToIntent, type TextToSpeech } from './types.js';

export interface PipelineParts {
  readonly source: AudioSource;
  readonly endOfSpeech: EndOfSpeech;
  readonly recogniser: SpeechToIntent;
  readonly tts: TextToSpeech;
  /** Where the answer goes; none: it is synthesised and returned, not played. */
  readonly sink?: AudioSink;
}

/** The answer to say for a recognition (an intent's answer, or "I don't know that"); undefined says nothing. */
export type Answerer = (recognition: Recognition) => Promise<string | undefined>;

export interface PipelineOptions {
  readonly signal?: AbortSignal;
  /** Listening gives up after this long without a finished utterance (a microphone left open). */
  readonly maxListenSeconds?: number;
}

export interface PipelineTimings {
  /** Milliseconds from the end of speech being detected to the recogniser's verdict. */
  readonly recogniseMs: number;
  readonly answerMs: number;
  readonly synthesiseMs: number;
  /** End of speech to the first sample of the answer going out; null when nothing was said. */
  readonly endOfSpeechToAnswerMs: number | null;
  /** CPU time of the programs that ran for this exchange (pocketsphinx, espeak-ng), when the platform tells. */
  readonly childCpuMs: number | null;
}

export type PipelineResult =
  | { readonly kind: 'no-speech'; readonly listenedSeconds: number }
  | {
      readonly kind: 'answered';
      /** Where the utterance was, in seconds from the start of the audio. */
      readonly utterance: { readonly start: number; readonly end: number };
      readonly recognition: Recognition;
      readonly answer: string | undefined;
      readonly timings: PipelineTimings;
    };

/** Audio kept while waiting for speech to start: the detector's pre-roll reaches back less than this. */
const KEEP_WHILE_WAITING_SECONDS = 2;

/** Listens for one utterance: its 16 kHz samples and when its end was seen, or undefined when none came. */
async function listen(parts: PipelineParts, options: PipelineOptions): Promise<{ audio: Int16Array; segment: SpeechSegment; endedAt: number } | { listened: number }> {
  const { source, endOfSpeech } = parts;
  const resampler = new Resampler(source.sampleRate, SPEECH_RATE, source.channels);
  const maxSamples = (options.maxListenSeconds ?? 30) * SPEECH_RATE;
  endOfSpeech.reset();
  let kept: Int16Array[] = [];
  let keptFrom = 0; // stream index of kept[0][0]
  let total = 0;
  let started = false;
  const take = (samples: Int16Array): SpeechSegment | undefined => {
    if (samples.length === 0) return undefined;
    kept.push(samples);
    total += samples.length;
    const event = endOfSpeech.push(samples);
    // An end implies a start (both can fall in one chunk): from then on nothing is dropped.
    if (event) started = true;
    if (!started) {
      // Drop what the pre-roll can no longer reach.
      while (kept.length > 1 && total - keptFrom - (kept[0]?.length ?? 0) >= KEEP_WHILE_WAITING_SECONDS * SPEECH_RATE) {
        keptFrom += kept[0]?.length ?? 0;
        kept = kept.slice(1);
      }
    }
    return event?.kind === 'end' ? event.segment : undefined;
  };
  let segment: SpeechSegment | undefined;
  for await (const chunk of source.read(options.signal)) {
    segment = take(resampler.push(chunk));
    if (segment || total >= maxSamples) break;
  }
  source.stop();
  if (options.signal?.aborted) throw new ApiaryError(ErrorCodes.VOICE_FAILED, 'listening stopped: aborted');
  segment ??= take(resampler.flush()) ?? endOfSpeech.flush();
  const endedAt = performance.now();
  if (!segment) return { listened: total / SPEECH_RATE };
  const all = new Int16Array(total - keptFrom);
  let at = 0;
  for (const k of kept) {
    all.set(k, at);
    at += k.length;
  }
  const from = Math.max(segment.start - keptFrom, 0);
  return { audio: all.slice(from, Math.max(from, segment.end - keptFrom)), segment, endedAt };
}

export async function runSpeechPipeline(parts: PipelineParts, answer: Answerer, options: PipelineOptions = {}): Promise<PipelineResult> {
  const cpuBefore = childCpuMs();
  const heard = await listen(parts, options);
  if ('listened' in heard) return { kind: 'no-speech', listenedSeconds: heard.listened };
  const { signal } = options;
  const recognition = await parts.recogniser.recognise(heard.audio, signal);
  const recognisedAt = performance.now();
  const text = await answer(recognition);
  const answeredAt = performance.now();
  let synthesisedAt = answeredAt;
  let speakingAt: number | undefined;
  if (text !== undefined) {
    const speech = await parts.tts.synthesise(text, signal);
    synthesisedAt = performance.now();
    if (parts.sink) {
      await parts.sink.play(speech, { ...(signal ? { signal } : {}), onStart: () => { speakingAt = performance.now(); } });
    } else {
      speakingAt = synthesisedAt;
    }
  }
  const cpuAfter = childCpuMs();
  return {
    kind: 'answered',
    utterance: { start: heard.segment.start / SPEECH_RATE, end: heard.segment.end / SPEECH_RATE },
    recognition,
    answer: text,
    timings: {
      recogniseMs: recognisedAt - heard.endedAt,
      answerMs: answeredAt - recognisedAt,
      synthesiseMs: synthesisedAt - answeredAt,
      endOfSpeechToAnswerMs: speakingAt === undefined ? null : speakingAt - heard.endedAt,
      childCpuMs: cpuBefore === undefined || cpuAfter === undefined ? null : cpuAfter - cpuBefore,
    },
  };
}
