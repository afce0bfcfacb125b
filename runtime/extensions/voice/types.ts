/**
 * The voice path's seams. Each stage is a small interface with one
 * implementation per file, so an engine can be swapped (another recogniser, a
 * Silero end-of-speech detector, a Wyoming audio source) without touching the
 * pipeline that strings them together (speech-pipeline.ts).
 *
 * Audio is 16-bit signed PCM throughout (what ALSA, espeak-ng and pocketsphinx
 * speak natively); the recogniser takes 16 kHz mono, the rate pocketsphinx's
 * en-us acoustic model was trained at.
 */
import type { RecognisedIntent } from '../ask/vocabulary.js';

/** The rate the recogniser and the end-of-speech detector work at. */
export const SPEECH_RATE = 16_000;

/** 16-bit PCM with its format; `samples` is interleaved when channels > 1. */
export interface Pcm {
  readonly sampleRate: number;
  readonly channels: number;
  readonly samples: Int16Array;
}

/** What a recogniser made of an utterance: an intent, or why there is none. */
export type Recognition =
  | { readonly kind: 'intent'; readonly intent: RecognisedIntent }
  /** `text` is what was heard, when something was (a grammar sentence no intent claims, say). */
  | { readonly kind: 'rejected'; readonly reason: string; readonly text?: string };

export interface SpeechToIntent {
  /** `audio` is one utterance, 16 kHz mono. Engine failures reject with an ApiaryError; unrecognised speech resolves `rejected`. */
  recognise(audio: Int16Array, signal?: AbortSignal): Promise<Recognition>;
}

/** Where utterances come from: a microphone (arecord) or a recording (a WAV file). */
export interface AudioSource {
  /** The format of the chunks `read` yields. */
  readonly sampleRate: number;
  readonly channels: number;
  /** Yields chunks until the audio ends, `stop` is called or `signal` aborts; then the capture is released. */
  read(signal?: AbortSignal): AsyncIterable<Int16Array>;
  /** Ends the current `read` cleanly (the capture program is stopped). */
  stop(): void;
}

/** Where spoken answers go: a speaker (aplay) or a WAV file. */
export interface AudioSink {
  /** Resolves once all of it has been handed over; `onStart` is called as the first sample goes out. */
  play(audio: Pcm, options?: { signal?: AbortSignal; onStart?: () => void }): Promise<void>;
}

export interface TextToSpeech {
  /** Speaks `text` into PCM (not played). */
  synthesise(text: string, signal?: AbortSignal): Promise<Pcm>;
}

/** A stretch of speech in a stream, as sample indexes from the stream's start (end exclusive). */
export interface SpeechSegment {
  readonly start: number;
  readonly end: number;
}

export type EndOfSpeechEvent =
  | { readonly kind: 'start'; readonly at: number }
  | { readonly kind: 'end'; readonly segment: SpeechSegment };

/**
 * Finds where an utterance starts and where it ends in a 16 kHz mono stream.
 * `push` is given consecutive chunks and returns what happened in them (at
 * most one event per call: a start and an end in the same chunk report the end).
 */
export interface EndOfSpeech {
  push(samples: Int16Array): EndOfSpeechEvent | undefined;
  /** The stream ended: the segment so far if speech had started, else undefined. */
  flush(): SpeechSegment | undefined;
  /** Forgets everything, ready for the next utterance. */
  reset(): void;
}

/**
 * A wake word: the seam for an always-listening trigger. None is shipped or
 * on by default: the known engines pin a core of a Pi Zero 2 W, and
 * openWakeWord's models are non-commercial (docs/voice.md). An
 * implementation watches a stream and calls `onWake`; the voice extension
 * would then listen as on a button press.
 */
export interface WakeWordDetector {
  /** Starts watching `source` (the voice microphone); resolves once it runs. */
  start(source: AudioSource, onWake: () => void): Promise<void>;
  stop(): Promise<void>;
}
