/**
 * End of speech by frame energy against a tracked noise floor: cheap enough
 * for a Pi Zero (one sum of squares per 20 ms frame) and enough for
 * push-to-talk, where the speaker is close to the voice microphone. A trained
 * detector (Silero VAD on the node's ONNX runtime) would hold up better in
 * wind or near a loud colony; it can replace this behind `EndOfSpeech`.
 *
 * Per 20 ms frame, the RMS level in dBFS. The noise floor is the quietest
 * frame of the last 3 s (minimum statistics: speech has gaps, noise does not),
 * never under -70 dBFS so digital silence does not make every breath speech.
 * A frame is speech when it is 12 dB over the floor and over -55 dBFS.
 * Speech starts after 60 ms of speech frames (a click is shorter) and ends
 * after 600 ms without (longer than the pauses between words; it is the
 * latency added after the last word). The segment keeps 300 ms before the
 * start and 200 ms after the last speech frame, since the first and last
 * phones are quiet; under 200 ms of speech in all is a cough, not a question,
 * and is forgotten. 10 s of speech ends the utterance whatever follows.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { SPEECH_RATE, type EndOfSpeech, type EndOfSpeechEvent, type SpeechSegment } from './types.js';

export interface EnergyThresholds {
  readonly frameMs: number;
  readonly snrDb: number;
  readonly minSpeechDb: number;
  readonly floorMinDb: number;
  readonly floorWindowMs: number;
  readonly startMs: number;
  readonly hangoverMs: number;
  readonly preRollMs: number;
  readonly postRollMs: number;
  readonly minSpeechMs: number;
  readonly maxSpeechMs: number;
}

export const DEFAULT_THRESHOLDS: EnergyThresholds = {
  frameMs: 20,
  snrDb: 12,
  minSpeechDb: -55,
  floorMinDb: -70,
  floorWindowMs: 3_000,
  startMs: 60,
  hangoverMs: 600,
  preRollMs: 300,
  postRollMs: 200,
  minSpeechMs: 200,
  maxSpeechMs: 10_000,
};

/** RMS level of a frame in dBFS (full scale = 0 dB), -100 for silence. */
export function levelDb(frame: Int16Array): number {
  let sum = 0;
  for (const s of frame) sum += s * s;
  const rms = Math.sqrt(sum / Math.max(frame.length, 1));
  return rms < 1e-5 * 32768 ? -100 : 20 * Math.log10(rms / 32768);
}

export class EnergyEndOfSpeech implements EndOfSpeech {
  readonly thresholds: EnergyThresholds;
  private readonly frameSize: number;
  private readonly frames: (ms: number) => number;
  private pending = new Int16Array(0);
  private position = 0; // samples consumed in whole frames
  private levels: number[] = [];
  private state: 'waiting' | 'speech' | 'ended' = 'waiting';
  private run = 0; // consecutive speech frames while waiting
  private silent = 0; // consecutive non-speech frames while in speech
  private speechFrames = 0;
  private start = 0;
  private lastSpeechEnd = 0;

  constructor(thresholds: Partial<EnergyThresholds> = {}, readonly sampleRate = SPEECH_RATE) {
    this.thresholds = { ...DEFAULT_THRESHOLDS, ...thresholds };
    for (const [name, value] of Object.entries(this.thresholds)) {
      if (!Number.isFinite(value)) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `end-of-speech threshold ${name} is not a number`);
    }
    this.frameSize = Math.round((sampleRate * this.thresholds.frameMs) / 1000);
    if (this.frameSize < 1) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `end-of-speech frameMs ${this.thresholds.frameMs} is under one sample`);
    this.frames = (ms) => Math.max(1, Math.round(ms / this.thresholds.frameMs));
  }

  reset(): void {
    this.pending = new Int16Array(0);
    this.position = 0;
    this.levels = [];
    this.state = 'waiting';
    this.run = 0;
    this.silent = 0;
    this.speechFrames = 0;
  }

  push(samples: Int16Array): EndOfSpeechEvent | undefined {
    if (this.state === 'ended') return undefined;
    const data = new Int16Array(this.pending.length + samples.length);
    data.set(this.pending);
    data.set(samples, this.pending.length);
    let event: EndOfSpeechEvent | undefined;
    let at = 0;
    for (; at + this.frameSize <= data.length; at += this.frameSize) {
      const e = this.frame(data.subarray(at, at + this.frameSize));
      if (e) event = e;
      if (this.isEnded()) break;
    }
    this.pending = this.isEnded() ? new Int16Array(0) : data.slice(at);
    return event;
  }

  flush(): SpeechSegment | undefined {
    if (this.state !== 'speech' || this.speechFrames < this.frames(this.thresholds.minSpeechMs)) return undefined;
    this.state = 'ended';
    return { start: this.start, end: Math.min(this.lastSpeechEnd + this.ms(this.thresholds.postRollMs), this.position + this.pending.length) };
  }

  /** A method, not a comparison, since `frame` changes the state under TypeScript's narrowing. */
  private isEnded(): boolean {
    return this.state === 'ended';
  }

  private ms(ms: number): number {
    return Math.round((this.sampleRate * ms) / 1000);
  }

  private frame(frame: Int16Array): EndOfSpeechEvent | undefined {
    const t = this.thresholds;
    const level = levelDb(frame);
    this.levels.push(level);
    if (this.levels.length > this.frames(t.floorWindowMs)) this.levels.shift();
    const floor = Math.max(Math.min(...this.levels), t.floorMinDb);
    const speech = level >= floor + t.snrDb && level >= t.minSpeechDb;
    const frameStart = this.position;
    this.position += frame.length;
    if (this.state === 'waiting') {
      this.run = speech ? this.run + 1 : 0;
      if (this.run < this.frames(t.startMs)) return undefined;
      this.state = 'speech';
      this.speechFrames = this.run;
      this.silent = 0;
      this.lastSpeechEnd = this.position;
      this.start = Math.max(0, this.position - this.run * this.frameSize - this.ms(t.preRollMs));
      return { kind: 'start', at: this.start };
    }
    if (speech) {
      this.speechFrames++;
      this.silent = 0;
      this.lastSpeechEnd = frameStart + frame.length;
    } else {
      this.silent++;
    }
    const long = this.position - this.start >= this.ms(t.maxSpeechMs);
    if (this.silent < this.frames(t.hangoverMs) && !long) return undefined;
    if (this.speechFrames < this.frames(t.minSpeechMs)) {
      // Too little to be a question: wait for the next one.
      this.state = 'waiting';
      this.run = 0;
      return undefined;
    }
    this.state = 'ended';
    return { kind: 'end', segment: { start: this.start, end: Math.min(this.lastSpeechEnd + this.ms(t.postRollMs), this.position) } };
  }
}
