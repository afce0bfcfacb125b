/**
 * A recording as an AudioSource (`apiary ask --audio file.wav`) and a WAV
 * file as an AudioSink (`--out file.wav`): the whole speech path runs the
 * same on a file as on the microphone, which is how it is tested.
 */
import { writeFile } from 'node:fs/promises';
import type { AudioSink, AudioSource, Pcm } from './types.js';
import { encodeWav, readWavFile } from './wav.js';

/** Chunk length handed on, like a microphone's buffer. */
const CHUNK_MS = 100;

export class WavFileSource implements AudioSource {
  private stopped = false;

  private constructor(private readonly pcm: Pcm) {}

  /** Reads and checks the file (APIARY_AUDIO_INVALID when it is no 16-bit PCM WAV). */
  static async open(file: string): Promise<WavFileSource> {
    return new WavFileSource(await readWavFile(file));
  }

  static of(pcm: Pcm): WavFileSource {
    return new WavFileSource(pcm);
  }

  get sampleRate(): number {
    return this.pcm.sampleRate;
  }

  get channels(): number {
    return this.pcm.channels;
  }

  stop(): void {
    this.stopped = true;
  }

  async *read(signal?: AbortSignal): AsyncIterable<Int16Array> {
    this.stopped = false;
    // A file has no pace of its own: yield to the event loop between chunks, as a microphone would.
    await Promise.resolve();
    const step = Math.max(1, Math.round((this.pcm.sampleRate * CHUNK_MS) / 1000)) * this.pcm.channels;
    for (let at = 0; at < this.pcm.samples.length; at += step) {
      if (this.stopped || signal?.aborted) return;
      yield this.pcm.samples.subarray(at, at + step);
    }
  }
}

export class WavFileSink implements AudioSink {
  constructor(readonly file: string) {}

  async play(audio: Pcm, options: { signal?: AbortSignal; onStart?: () => void } = {}): Promise<void> {
    options.onStart?.();
    await writeFile(this.file, encodeWav(audio), options.signal ? { signal: options.signal } : {});
  }
}
