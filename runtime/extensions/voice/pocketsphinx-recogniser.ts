/**
 * SpeechToIntent with CMU pocketsphinx from Debian (`pocketsphinx`,
 * `pocketsphinx-en-us`: the program and its en-us acoustic model, nothing to
 * download). It decodes against a JSGF grammar made from the node's
 * vocabulary (jsgf-grammar.ts), never the free language model, which turns
 * short questions into nonsense; speech outside the grammar comes back empty
 * and is rejected rather than forced into a question.
 *
 * Each utterance is one run of the program on a WAV file: no long-lived
 * decoder holding 30 MB while nobody speaks. Two command lines are known:
 * pocketsphinx 5 (`pocketsphinx ... single <file>`, one JSON line per
 * utterance, Debian trixie) and 0.8/5prealpha (`pocketsphinx_continuous
 * -infile <file>`, one line of text per utterance, Debian bookworm).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import type { IntentVocabulary } from '../ask/vocabulary.js';
import { buildGrammar, SentenceMatcher, type Grammar } from './jsgf-grammar.js';
import { MAX_UNEXPLAINED_SECONDS, unexplainedSpeech, type WordTime } from './speech-coverage.js';
import { aptHint, runProgram } from './run-program.js';
import { SPEECH_RATE, type Recognition, type SpeechToIntent } from './types.js';
import { encodeWav } from './wav.js';

export const POCKETSPHINX_PACKAGES = 'pocketsphinx pocketsphinx-en-us';
export const DEFAULT_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
/** Program names, newest first. */
export const POCKETSPHINX_PROGRAMS = ['pocketsphinx', 'pocketsphinx_continuous'] as const;

export type PocketsphinxFlavour = 'v5' | 'continuous';

/**
 * Search beams wider than pocketsphinx's defaults (1e-48, 7e-29, 1e-48), an
 * option, not the default: with the defaults the grammar search sometimes
 * prunes the right path and ends nowhere ("Final result does not match the
 * grammar": nothing recognised); these recover some of those (on 64 espeak-ng
 * questions 63 right instead of 62) but force more out-of-grammar speech into
 * questions (3 of 24 instead of 2), and rejecting what is not a question
 * matters as much. Wider still (1e-80) forced most of it.
 */
export const WIDE_BEAMS: readonly string[] = ['-beam', '1e-60', '-wbeam', '1e-40', '-pbeam', '1e-60'];

/**
 * Half-bit noise added before feature extraction, with a fixed seed so a
 * recording always gives the same answer: digital silence (exact zeros, as in
 * a synthesised or edited file) upsets pocketsphinx's log-energy features, and
 * a question padded with it was not recognised where the same one with sox's
 * dither was.
 */
export const DITHER: readonly string[] = ['-dither', 'yes', '-seed', '1'];

export interface PocketsphinxOptions {
  readonly vocabulary: IntentVocabulary;
  /** Holds `en-us/` (the acoustic model) and `cmudict-en-us.dict`. */
  readonly modelDir?: string;
  /** A program path or name; default: the first of POCKETSPHINX_PROGRAMS on PATH. */
  readonly program?: string;
  /** Per utterance; pocketsphinx takes about 0.2 s of CPU for a short question on x86, a few seconds on a Pi Zero. */
  readonly timeoutMs?: number;
  /** Utterances decoded at once; the rest wait (each decoder holds ~30 MB). */
  readonly maxConcurrent?: number;
  /** Longest utterance taken, in seconds (the end-of-speech detector cuts at 10 s). */
  readonly maxSeconds?: number;
  /** Decoder search beams (pocketsphinx arguments, e.g. WIDE_BEAMS); default pocketsphinx's own. */
  readonly beams?: readonly string[];
  /** Loud audio the recognised words may leave unexplained before the match is refused (speech-coverage.ts); Infinity turns the check off. */
  readonly maxUnexplainedSeconds?: number;
}

/** The first of `names` that is an executable file on PATH, as a full path. */
export async function findOnPath(names: readonly string[], pathVar = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const name of names) {
    if (name.includes('/')) {
      if (await access(name, constants.X_OK).then(() => true, () => false)) return name;
      continue;
    }
    for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
      const file = path.join(dir, name);
      if (await access(file, constants.X_OK).then(() => true, () => false)) return file;
    }
  }
  return undefined;
}

export function flavourOf(program: string): PocketsphinxFlavour {
  return path.basename(program).includes('continuous') ? 'continuous' : 'v5';
}

/** Which of `words` the pronunciation dictionary has (`word(2)` lines are alternates of `word`). */
export async function dictionaryHas(dictFile: string, words: ReadonlySet<string>): Promise<Set<string>> {
  const text = await readFile(dictFile, 'utf8');
  const found = new Set<string>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    const word = (space < 0 ? line : line.slice(0, space)).replace(/\(\d+\)$/, '').toLowerCase();
    if (words.has(word)) found.add(word);
  }
  return found;
}

export interface Hypothesis {
  /** The recognised words, utterances joined by spaces ('' when nothing in the grammar was heard). */
  readonly text: string;
  /** Where each word is, when the program said and there was one utterance; alternates lose their `(2)`. */
  readonly words: readonly WordTime[] | undefined;
  /** Utterances with words the program found (pocketsphinx_continuous splits at pauses). */
  readonly utterances: number;
}

const NUMBER = /^-?\d+(\.\d+)?$/;

/**
 * The program's output: pocketsphinx_continuous with `-time yes` prints each
 * utterance's text, then a `word start end posterior` line per word;
 * pocketsphinx 5 prints a JSON line per utterance, `{"b","d","p","t","w":[{"b","d","p","t"}]}`.
 */
export function parseHypotheses(flavour: PocketsphinxFlavour, stdout: string): Hypothesis {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const texts: string[] = [];
  const words: WordTime[] = [];
  for (const line of lines) {
    if (flavour === 'continuous') {
      const f = line.split(/\s+/);
      if (f.length === 4 && NUMBER.test(f[1] ?? '') && NUMBER.test(f[2] ?? '')) words.push({ word: (f[0] ?? '').replace(/\(\d+\)$/, ''), start: Number(f[1]), end: Number(f[2]) });
      else texts.push(line);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null) continue;
    const { t, w } = parsed as { t?: unknown; w?: unknown };
    if (typeof t !== 'string') continue;
    if (t.trim() !== '') texts.push(t.trim());
    if (Array.isArray(w)) {
      for (const seg of w as unknown[]) {
        const { b, d, t: word } = (seg ?? {}) as { b?: unknown; d?: unknown; t?: unknown };
        if (typeof b === 'number' && typeof d === 'number' && typeof word === 'string') words.push({ word: word.replace(/\(\d+\)$/, ''), start: b, end: b + d });
      }
    }
  }
  return { text: texts.join(' ').trim(), words: texts.length === 1 && words.length > 0 ? words : undefined, utterances: texts.length };
}

/** Every word the vocabulary could put in the grammar: pattern words and slot value words. */
function vocabularyWords(vocabulary: IntentVocabulary): Set<string> {
  const all = [...vocabulary.intents.flatMap((i) => i.spoken ?? i.patterns), ...Object.values(vocabulary.slots).flat()];
  return new Set(all.join(' ').toLowerCase().split(/[^a-z']+/).filter(Boolean));
}

export class PocketsphinxRecogniser implements SpeechToIntent {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private counter = 0;

  private constructor(
    readonly program: string,
    readonly flavour: PocketsphinxFlavour,
    readonly grammar: Grammar,
    private readonly matcher: SentenceMatcher,
    private readonly dir: string,
    private readonly modelArgs: readonly string[],
    private readonly options: PocketsphinxOptions,
  ) {}

  /** Finds the program and the model, writes the grammar; APIARY_VOICE_UNAVAILABLE with the apt line when either is missing. */
  static async create(options: PocketsphinxOptions): Promise<PocketsphinxRecogniser> {
    const program = await findOnPath(options.program ? [options.program] : POCKETSPHINX_PROGRAMS);
    if (!program) {
      throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `no pocketsphinx program found (looked for ${options.program ?? POCKETSPHINX_PROGRAMS.join(', ')} on PATH)`, { hint: aptHint(POCKETSPHINX_PACKAGES) });
    }
    const modelDir = options.modelDir ?? DEFAULT_MODEL_DIR;
    const hmm = path.join(modelDir, 'en-us');
    const dict = path.join(modelDir, 'cmudict-en-us.dict');
    for (const needed of [path.join(hmm, 'mdef'), dict]) {
      if (!(await access(needed, constants.R_OK).then(() => true, () => false))) {
        throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `the pocketsphinx en-us model is missing (${needed} cannot be read)`, { hint: aptHint('pocketsphinx-en-us') });
      }
    }
    const known = await dictionaryHas(dict, vocabularyWords(options.vocabulary));
    const grammar = buildGrammar(options.vocabulary, (w) => known.has(w));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-voice-'));
    const grammarFile = path.join(dir, 'questions.gram');
    await writeFile(grammarFile, grammar.text);
    const flavour = flavourOf(program);
    // Word times for the coverage check (speech-coverage.ts); pocketsphinx 5 always gives them.
    const logArgs = flavour === 'continuous' ? ['-logfn', '/dev/null', '-time', 'yes'] : [];
    const modelArgs = ['-hmm', hmm, '-dict', dict, '-jsgf', grammarFile, '-samprate', String(SPEECH_RATE), ...(options.beams ?? []), ...DITHER, ...logArgs];
    return new PocketsphinxRecogniser(program, flavour, grammar, new SentenceMatcher(grammar.vocabulary), dir, modelArgs, options);
  }

  async recognise(audio: Int16Array, signal?: AbortSignal): Promise<Recognition> {
    const maxSamples = (this.options.maxSeconds ?? 15) * SPEECH_RATE;
    if (audio.length === 0) return { kind: 'rejected', reason: 'no audio' };
    if (audio.length > maxSamples) {
      throw new ApiaryError(ErrorCodes.AUDIO_INVALID, `utterance of ${(audio.length / SPEECH_RATE).toFixed(1)} s is over the ${maxSamples / SPEECH_RATE} s recognised`, { hint: 'ask one short question at a time' });
    }
    await this.slot();
    const file = path.join(this.dir, `utterance-${++this.counter}.wav`);
    try {
      await writeFile(file, encodeWav({ sampleRate: SPEECH_RATE, channels: 1, samples: audio }));
      const args = this.flavour === 'continuous' ? [...this.modelArgs, '-infile', file] : [...this.modelArgs, 'single', file];
      const { stdout } = await runProgram(this.program, args, {
        timeoutMs: this.options.timeoutMs ?? 15_000,
        maxStdoutBytes: 64 * 1024,
        missingHint: aptHint(POCKETSPHINX_PACKAGES),
        ...(signal ? { signal } : {}),
      });
      const heard = parseHypotheses(this.flavour, stdout.toString('utf8'));
      if (heard.text === '') return { kind: 'rejected', reason: 'nothing the node can be asked was heard' };
      const intent = this.matcher.match(heard.text);
      if (!intent) return { kind: 'rejected', reason: 'heard words that are no question of the vocabulary', text: heard.text };
      const limit = this.options.maxUnexplainedSeconds ?? MAX_UNEXPLAINED_SECONDS;
      const unexplained = heard.words ? unexplainedSpeech(audio, heard.words) : 0;
      if (unexplained > limit) {
        return { kind: 'rejected', reason: `${unexplained.toFixed(2)} s of speech is not in "${heard.text}": taken for something else said`, text: heard.text };
      }
      return { kind: 'intent', intent };
    } finally {
      await rm(file, { force: true });
      this.release();
    }
  }

  /** Removes the grammar's temporary directory. */
  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async slot(): Promise<void> {
    if (this.active < Math.max(1, this.options.maxConcurrent ?? 1)) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
