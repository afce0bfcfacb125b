/**
 * The speaker as an AudioSink: the answer as WAV on `aplay`'s stdin (Debian
 * `alsa-utils`), bounded by the answer's length plus room to open the device.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { ALSA_PACKAGE, checkDevice, noDevice } from './alsa-device.js';
import { aptHint, runProgram } from './run-program.js';
import type { AudioSink, Pcm } from './types.js';
import { encodeWav } from './wav.js';

export interface AplayOptions {
  readonly device?: string;
  readonly program?: string;
}

/** The speaker: the answer as WAV on aplay's stdin. */
export class AplaySink implements AudioSink {
  constructor(private readonly options: AplayOptions = {}) {
    checkDevice('voice output device', options.device ?? 'default');
  }

  async play(audio: Pcm, options: { signal?: AbortSignal; onStart?: () => void } = {}): Promise<void> {
    const device = this.options.device ?? 'default';
    const program = this.options.program ?? 'aplay';
    const seconds = audio.samples.length / audio.channels / audio.sampleRate;
    options.onStart?.();
    try {
      await runProgram(program, ['-q', '-D', device, '-t', 'wav', '-'], {
        input: encodeWav(audio),
        // It plays in real time: the length of the answer, and room for a slow device to open.
        timeoutMs: Math.ceil(seconds * 1000) + 10_000,
        maxStdoutBytes: 64 * 1024,
        missingHint: aptHint(ALSA_PACKAGE),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (err instanceof ApiaryError && err.code === ErrorCodes.VOICE_FAILED && noDevice(err.message)) {
        throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `no speaker at ALSA device ${JSON.stringify(device)}: ${err.message}`, { hint: 'plug in a speaker, list devices with `aplay -l`, and set the voice output device', cause: err });
      }
      throw err;
    }
  }
}
