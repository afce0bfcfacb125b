/**
 * TextToSpeech through a user's program (`tts.command` in the config), for
 * an engine the node does not ship (Piper, a cloud voice where the owner
 * wants one): the program gets the text on stdin and writes a 16-bit PCM WAV
 * to stdout. It is an argument vector, not a shell line, so the text can
 * never become a command; it runs with a time limit and an output cap like
 * every speech program (run-program.ts).
 */
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { checkText } from './espeak-tts.js';
import { runProgram } from './run-program.js';
import type { Pcm, TextToSpeech } from './types.js';
import { parseWav } from './wav.js';

export interface CommandTtsOptions {
  /** `[program, ...args]`: a program name on PATH or an absolute path. */
  readonly command: readonly string[];
  readonly timeoutMs?: number;
  readonly maxOutputBytes?: number;
}

const MAX_ARGS = 64;
const MAX_ARG_CHARS = 4_096;

/** Validates `tts.command`; the error names the field and what a good one looks like. */
export function checkTtsCommand(command: unknown): readonly string[] {
  const hint = 'tts.command is a list: a program and its arguments, e.g. [piper, --model, /opt/piper/en_GB.onnx, --output_file, /dev/stdout]; it reads the text on stdin and writes WAV to stdout';
  if (!Array.isArray(command) || command.length === 0 || command.length > MAX_ARGS) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tts.command must be a list of 1 to ${MAX_ARGS} strings`, { hint });
  }
  command.forEach((arg: unknown, i) => {
    if (typeof arg !== 'string' || arg.length === 0 || arg.length > MAX_ARG_CHARS || arg.includes('\0')) {
      throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tts.command[${i}] must be a non-empty string without NUL, under ${MAX_ARG_CHARS} characters`, { hint });
    }
  });
  const program = command[0] as string;
  if (program.includes('/') && !path.isAbsolute(program)) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `tts.command[0] ${JSON.stringify(program)} is a relative path: the node's working directory is not yours`, { hint: 'give an absolute path or a program name on PATH' });
  }
  return command as string[];
}

export class CommandTts implements TextToSpeech {
  private readonly command: readonly string[];

  constructor(private readonly options: CommandTtsOptions) {
    this.command = checkTtsCommand(options.command);
  }

  async synthesise(text: string, signal?: AbortSignal): Promise<Pcm> {
    const [program, ...args] = this.command as [string, ...string[]];
    const { stdout } = await runProgram(program, args, {
      input: `${checkText(text)}\n`,
      timeoutMs: this.options.timeoutMs ?? 20_000,
      maxStdoutBytes: this.options.maxOutputBytes ?? 32 * 1024 * 1024,
      missingHint: `tts.command[0] ${JSON.stringify(program)} is not installed or not on PATH: install it, or give its absolute path`,
      ...(signal ? { signal } : {}),
    });
    return parseWav(stdout, { streamed: true, source: `tts.command ${path.basename(program)}'s output` });
  }
}
