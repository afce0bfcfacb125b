/**
 * Runs a speech program (pocketsphinx, espeak-ng, a tts.command) the one way
 * the voice path allows: no shell, input on stdin, a time limit, a cap on
 * what it may write, and killed on abort. A missing program is
 * APIARY_VOICE_UNAVAILABLE with the `apt install` line; anything else that
 * goes wrong is APIARY_VOICE_FAILED with the end of its stderr.
 */
import { spawn } from 'node:child_process';
import { ApiaryError, ErrorCodes } from '../../errors.js';

export interface RunLimits {
  readonly timeoutMs: number;
  readonly maxStdoutBytes: number;
  /** The fix when the program is missing: `aptHint('pocketsphinx pocketsphinx-en-us')`. */
  readonly missingHint: string;
  readonly input?: Uint8Array | string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Kept from stderr: the end, where the reason for a failure is. */
const STDERR_TAIL = 4_096;

export function aptHint(packages: string): string {
  return `install it: \`sudo apt install ${packages}\``;
}

export function runProgram(program: string, args: readonly string[], limits: RunLimits): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (limits.signal?.aborted) {
      reject(new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} not started: aborted`));
      return;
    }
    const child = spawn(program, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: limits.env ?? { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let failure: ApiaryError | undefined;
    const stop = (why: ApiaryError) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop(new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} did not finish within ${limits.timeoutMs / 1000} s`, { hint: 'the machine may be overloaded; a shorter utterance or answer helps' })), limits.timeoutMs);
    const onAbort = () => stop(new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} stopped: aborted`));
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > limits.maxStdoutBytes) stop(new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} wrote over ${limits.maxStdoutBytes} bytes`));
      else out.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      err = (err + chunk).slice(-STDERR_TAIL);
    });
    // A program that exits without reading all its input closes the pipe: that is its business, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(limits.input ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      failure ??= e.code === 'ENOENT'
        ? new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `${program} is not installed (not found)`, { hint: limits.missingHint, cause: e })
        : new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} could not start: ${e.message}`, { cause: e });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else if (code !== 0) {
        const last = err.trim().split('\n').slice(-3).join(' | ');
        reject(new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} failed (${signal ? `signal ${signal}` : `exit ${code}`})${last ? `: ${last}` : ''}`));
      } else resolve({ stdout: Buffer.concat(out), stderr: err });
    });
  });
}
