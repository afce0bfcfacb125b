/**
 * A check that the recognised words account for the speech in an utterance.
 *
 * A grammar decoder must answer with a sentence of its grammar, so out-of-
 * grammar speech ("set a timer for five minutes") sometimes comes back as the
 * question it resembles most ("how are the bees"), with the words it could
 * not explain aligned to silence. Pocketsphinx gives no usable confidence
 * under a grammar (its word posteriors are all 1), and a garbage loop in the
 * grammar swallows real questions too (measured: 7/64 right). What it does
 * give is where each word is; this counts the loud 10 ms frames (the same
 * rule as the end-of-speech detector: 12 dB over the quietest frame and over
 * -55 dBFS) that fall outside every word. Measured on espeak-ng speech in
 * four voices at two speeds through the pipeline (test/runtime/extensions/
 * voice/speech-end-to-end.test.ts): questions leave under 0.15 s
 * unexplained (0.23 s on untrimmed recordings); of 24 out-of-grammar
 * sentences, 5 were forced into a question before this check and 2 after it
 * with the limit at 0.25 s, about one short word. Those 2 ("what time is
 * it" heard as "what is the humidity") sound like the question they became:
 * no alignment check catches that (docs/voice.md).
 */
import { levelDb } from './energy-end-of-speech.js';
import { SPEECH_RATE } from './types.js';

/** A recognised word and where it is, in seconds from the utterance's start. */
export interface WordTime {
  readonly word: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Measured on the node's own vocabulary (speech-end-to-end.test.ts, 64 questions, 24 out-of-grammar sentences):
 * 0.25 s: 60/64 right, 21/24 rejected; 0.2 s: 60/64, 22/24; 0.15 s: 60/64, 23/24; 0.1 s: 57/64, 24/24 (questions
 * start being refused). 0.2 keeps a margin for real voices, which leave more unexplained sound than espeak-ng's.
 */
export const MAX_UNEXPLAINED_SECONDS = 0.2;
const FRAME = SPEECH_RATE / 100;
/** Words at a frame's edge: pocketsphinx's times are frame-rounded (10 ms). */
const SLACK = 0.01;

/** Silence and noise tokens, not words: `<sil>`, `<s>`, `(NULL)`, `[NOISE]`, `++BREATH++`. */
export function isFiller(word: string): boolean {
  return /^(<.*>|\(.*\)|\[.*\]|\+\+.*\+\+)$/.test(word);
}

/** Seconds of loud audio outside every real word. */
export function unexplainedSpeech(audio: Int16Array, words: readonly WordTime[]): number {
  const real = words.filter((w) => !isFiller(w.word));
  const levels: number[] = [];
  for (let at = 0; at + FRAME <= audio.length; at += FRAME) levels.push(levelDb(audio.subarray(at, at + FRAME)));
  if (levels.length === 0) return 0;
  const floor = Math.max(Math.min(...levels), -70);
  let unexplained = 0;
  levels.forEach((level, i) => {
    if (level < floor + 12 || level < -55) return;
    const centre = (i + 0.5) / 100;
    if (!real.some((w) => centre >= w.start - SLACK && centre <= w.end + SLACK)) unexplained++;
  });
  return unexplained / 100;
}
