/**
 * The voice microphone as an AudioSource: `arecord` (Debian `alsa-utils`)
 * captures raw 16-bit PCM to stdout, 16 kHz mono by default. No native addon;
 * stopping sends SIGTERM, on which arecord closes the device and exits 0.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { ALSA_PACKAGE, checkDevice, noDevice } from './alsa-device.js';
import { aptHint } from './run-program.js';
import { SPEECH_RATE, type AudioSource } from './types.js';

export interface ArecordOptions {
  readonly device?: string;
  readonly sampleRate?: number;
  readonly channels?: number;
  /** Capture stops after this long whatever happens (arecord's own `-d`, and a kill a second later). */
  readonly maxSeconds?: number;
  readonly program?: string;
}

/** The microphone: 16 kHz mono S16_LE, raw on arecord's stdout. */
export class ArecordSource implements AudioSource {
  readonly sampleRate: number;
  readonly channels: number;
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private stopped = false;

  constructor(private readonly options: ArecordOptions = {}) {
    checkDevice('voice input device', options.device ?? 'default');
    this.sampleRate = options.sampleRate ?? SPEECH_RATE;
    this.channels = options.channels ?? 1;
  }

  stop(): void {
    this.stopped = true;
    // arecord closes the device and exits 0 on SIGTERM.
    this.child?.kill('SIGTERM');
  }

  async *read(signal?: AbortSignal): AsyncIterable<Int16Array> {
    const o = this.options;
    const device = o.device ?? 'default';
    const maxSeconds = Math.max(1, Math.ceil(o.maxSeconds ?? 30));
    const program = o.program ?? 'arecord';
    this.stopped = false;
    const child = spawn(program, ['-q', '-D', device, '-f', 'S16_LE', '-r', String(this.sampleRate), '-c', String(this.channels), '-t', 'raw', '-d', String(maxSeconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      stderr = (stderr + c).slice(-2_048);
    });
    const exited = new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
      child.on('error', (error: NodeJS.ErrnoException) => resolve({ code: null, error }));
      child.on('close', (code) => resolve({ code }));
    });
    const onAbort = () => this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    const guard = setTimeout(() => child.kill('SIGKILL'), (maxSeconds + 1) * 1000);
    let carry: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
        const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
        const whole = data.length - (data.length % 2);
        carry = data.subarray(whole);
        const samples = new Int16Array(whole / 2);
        for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
        if (samples.length > 0) yield samples;
        if (this.stopped) break;
      }
      const { code, error } = await exited;
      if (error?.code === 'ENOENT') throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `${program} is not installed`, { hint: aptHint(ALSA_PACKAGE), cause: error });
      if (error) throw new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} could not start: ${error.message}`, { cause: error });
      if (code !== 0 && !this.stopped) {
        if (noDevice(stderr)) throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `no microphone at ALSA device ${JSON.stringify(device)}: ${stderr.trim().split('\n')[0] ?? ''}`, { hint: 'plug in the voice microphone (not the in-hive one), list devices with `arecord -l`, and set the voice input device' });
        throw new ApiaryError(ErrorCodes.VOICE_FAILED, `${program} failed (exit ${code}): ${stderr.trim().split('\n').slice(-2).join(' | ')}`);
      }
    } finally {
      clearTimeout(guard);
      signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      this.child = undefined;
    }
  }
}
