/**
 * TextToSpeech with espeak-ng (Debian `espeak-ng`): formant synthesis, about
 * 8 MB and 0.05 s of CPU per sentence, 22,050 Hz mono 16-bit WAV on stdout.
 * The text goes in on stdin, never as an argument, so an answer starting with
 * "-" cannot be read as an option.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { aptHint, runProgram } from './run-program.js';
import type { Pcm, TextToSpeech } from './types.js';
import { parseWav } from './wav.js';

export const ESPEAK_PACKAGE = 'espeak-ng';
/** espeak-ng's own range of words per minute. */
export const MIN_SPEED = 80;
export const MAX_SPEED = 450;
/** Longer than any answer; a runaway caller gets an error, not minutes of speech. */
export const MAX_TEXT_CHARS = 2_000;
const VOICE = /^[a-z0-9][a-z0-9_+-]{0,63}$/i;

export interface EspeakOptions {
  /** An espeak-ng voice (`espeak-ng --voices=en`): `en-us`, `en-gb-x-rp`, `en+f3`, ... */
  readonly voice?: string;
  /** Words per minute, 80..450 (espeak-ng's default is 175). */
  readonly speed?: number;
  readonly program?: string;
  readonly timeoutMs?: number;
}

/** The checks a `voice` config section needs too. */
export function checkEspeakOptions(options: EspeakOptions): void {
  if (options.voice !== undefined && !VOICE.test(options.voice)) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `voice ${JSON.stringify(options.voice)} is not an espeak-ng voice name`, { hint: 'list them with `espeak-ng --voices=en`, e.g. en-us or en-gb-x-rp' });
  }
  if (options.speed !== undefined && (!Number.isInteger(options.speed) || options.speed < MIN_SPEED || options.speed > MAX_SPEED)) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `speed ${options.speed} is not a whole number of words per minute in ${MIN_SPEED}..${MAX_SPEED}`, { hint: 'espeak-ng speaks 175 words per minute by default' });
  }
}

export function checkText(text: string): string {
  const clean = text.replace(/[\p{Cc}]+/gu, ' ').trim();
  if (clean === '') throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'nothing to say: the text is empty');
  if (clean.length > MAX_TEXT_CHARS) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `text of ${clean.length} characters is over the ${MAX_TEXT_CHARS} spoken`, { hint: 'answers are meant to be short' });
  return clean;
}

export class EspeakTts implements TextToSpeech {
  constructor(private readonly options: EspeakOptions = {}) {
    checkEspeakOptions(options);
  }

  async synthesise(text: string, signal?: AbortSignal): Promise<Pcm> {
    const clean = checkText(text);
    const args = ['--stdin', '--stdout', '-v', this.options.voice ?? 'en-us', '-s', String(this.options.speed ?? 160)];
    const program = this.options.program ?? 'espeak-ng';
    const { stdout } = await runProgram(program, args, {
      input: `${clean}\n`,
      timeoutMs: this.options.timeoutMs ?? 10_000,
      // 2,000 characters at 80 words per minute is ~4 minutes of 22,050 Hz: under 16 MB.
      maxStdoutBytes: 16 * 1024 * 1024,
      missingHint: aptHint(ESPEAK_PACKAGE),
      ...(signal ? { signal } : {}),
    });
    return parseWav(stdout, { streamed: true, source: `${program}'s output` });
  }
}
