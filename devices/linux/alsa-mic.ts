/**
 * A USB or I2S microphone through ALSA's `arecord` (alsa-utils), so no native
 * addon: `arecord -D <device> -f S16_LE -r <captureRate> -c 1 -t raw` runs for
 * as long as the device is open and streams PCM on stdout. The samples are
 * low-pass filtered and decimated to `sampleRate` (the beehive models need
 * 2205 Hz = 44100 / 20) into a ring buffer; capture() returns its most recent
 * seconds. An unplugged microphone makes arecord exit: that is counted, and
 * arecord is started again with a doubling backoff (1 s up to 1 min).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Clock } from '../../runtime/clock.js';
import type { AudioFrame, AudioSource } from '../device.js';
import type { LinuxAudioConfig } from './config.js';
import { Retry, stopChild } from './retry.js';
import { SensorFault } from './sysfs.js';

/** Beyond the frame length, how long capture() waits for sound before it gives up. */
const CAPTURE_GRACE_MS = 3_000;

export interface AlsaMicOptions {
  config: LinuxAudioConfig;
  clock: Clock;
  /** A problem outside capture() (arecord exited or could not start): counted and reported by the device. */
  onFault(fault: SensorFault): void;
}

export class AlsaMic implements AudioSource {
  readonly sampleRate: number;
  private readonly ring: Float32Array;
  private written = 0;
  private child: ChildProcess | undefined;
  private closed = true;
  private readonly retry: Retry;
  private readonly decimator: Decimator;
  private readonly waiters = new Set<() => void>();
  private stderr = '';

  constructor(private readonly options: AlsaMicOptions) {
    const { config } = options;
    this.sampleRate = config.sampleRate;
    this.ring = new Float32Array(Math.ceil(config.frameSeconds * config.sampleRate));
    this.decimator = new Decimator(config.captureRate / config.sampleRate);
    this.retry = new Retry(options.clock);
  }

  /** Starts arecord and returns at once: a microphone plugged in later is picked up by the restarts. */
  open(): Promise<void> {
    this.closed = false;
    this.start();
    return Promise.resolve();
  }

  async capture(seconds: number): Promise<AudioFrame> {
    const length = Math.min(this.ring.length, Math.round(seconds * this.sampleRate));
    if (this.written < length) {
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (this.written < length && !this.closed) return;
          done();
          resolve();
        };
        const cancel = this.options.clock.after(seconds * 1000 + CAPTURE_GRACE_MS, () => {
          done();
          reject(new SensorFault('missing', `no sound from the microphone ${this.options.config.device}${this.stderr ? `: arecord says "${this.stderr}"` : ''}`));
        });
        const done = () => { cancel(); this.waiters.delete(check); };
        this.waiters.add(check);
      });
    }
    if (this.closed) throw new SensorFault('missing', 'the microphone was closed');
    const samples = new Float32Array(length);
    const end = this.written % this.ring.length;
    for (let i = 0; i < length; i++) samples[i] = this.ring[(end - length + i + this.ring.length) % this.ring.length] ?? 0;
    return { t: this.options.clock.now(), sampleRate: this.sampleRate, samples };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retry.stop();
    for (const wake of [...this.waiters]) wake();
    const child = this.child;
    this.child = undefined;
    await stopChild(child);
  }

  private start(): void {
    const { config } = this.options;
    const bytes = config.format === 'S16_LE' ? 2 : 4;
    const args = ['-q', '-D', config.device, '-f', config.format, '-r', String(config.captureRate), '-c', '1', '-t', 'raw'];
    const child = spawn(config.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.written = 0; // the ring holds contiguous sound only: a restart starts it over
    this.stderr = '';
    this.decimator.reset();
    let carry = Buffer.alloc(0);
    child.stdout.on('data', (chunk: Buffer) => {
      this.retry.reset(); // sound flows: the next failure starts the backoff over
      const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const whole = data.length - (data.length % bytes);
      for (let offset = 0; offset < whole; offset += bytes) {
        const sample = bytes === 2 ? data.readInt16LE(offset) / 32768 : data.readInt32LE(offset) / 2147483648;
        const out = this.decimator.push(sample);
        if (out !== undefined) this.ring[this.written++ % this.ring.length] = out;
      }
      carry = Buffer.from(data.subarray(whole));
      for (const wake of [...this.waiters]) wake();
    });
    child.stderr.on('data', (chunk: Buffer) => { this.stderr = (this.stderr + chunk.toString()).trim().slice(-200); });
    child.once('error', (err: NodeJS.ErrnoException) => {
      this.stderr = err.code === 'ENOENT' ? `${config.command} not found (apt install alsa-utils)` : err.message;
    });
    child.once('close', (code, signal) => {
      if (this.child !== child || this.closed) return;
      this.child = undefined;
      this.options.onFault(new SensorFault('missing', `arecord on ${config.device} stopped (${signal ?? `exit ${code}`}${this.stderr ? `: ${this.stderr}` : ''}); retrying in ${this.retry.nextSeconds} s`));
      this.retry.schedule(() => { if (!this.closed) this.start(); });
    });
  }
}

/**
 * Low-pass filter and keep every `factor`-th sample: a Hamming-windowed sinc
 * with its cut-off at 0.4 of the output rate, so sound above the output's
 * Nyquist frequency does not fold back into the bands the models read.
 */
export class Decimator {
  private readonly taps: Float32Array;
  private readonly history: Float32Array;
  private index = 0;
  private phase = 0;

  constructor(private readonly factor: number) {
    const n = factor === 1 ? 1 : 16 * factor + 1;
    this.taps = new Float32Array(n);
    const cutoff = 0.4 / factor; // cycles per input sample
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const m = i - (n - 1) / 2;
      const sinc = m === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * m) / (Math.PI * m);
      const window = n === 1 ? 1 : 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1));
      this.taps[i] = sinc * window;
      sum += sinc * window;
    }
    for (let i = 0; i < n; i++) this.taps[i] = (this.taps[i] ?? 0) / sum; // unity gain at 0 Hz
    this.history = new Float32Array(n);
  }

  reset(): void {
    this.history.fill(0);
    this.index = 0;
    this.phase = 0;
  }

  /** One input sample in; an output sample every `factor` inputs. */
  push(sample: number): number | undefined {
    const n = this.history.length;
    this.history[this.index] = sample;
    this.index = (this.index + 1) % n;
    if (++this.phase < this.factor) return undefined;
    this.phase = 0;
    let acc = 0;
    for (let k = 0; k < n; k++) acc += (this.taps[k] ?? 0) * (this.history[(this.index + k) % n] ?? 0);
    return acc;
  }
}
