/**
 * The simulated hive's microphone: serves the colony's current sound from
 * the simulation, as a real microphone source would serve captured audio.
 */
import type { AudioFrame, AudioSource } from '../device.js';
import { HIVE_SOUND_SAMPLE_RATE, type HiveSoundBank } from './hive-sound-bank.js';
import type { HiveSimulation } from './hive-simulation.js';

export class SimulatedHiveAudio implements AudioSource {
  readonly sampleRate = HIVE_SOUND_SAMPLE_RATE;

  constructor(private readonly simulation: HiveSimulation, private readonly sounds: HiveSoundBank) {}

  async open(): Promise<void> {
    await this.sounds.open();
  }

  capture(seconds: number): Promise<AudioFrame> {
    const t = this.simulation.clock.now();
    const length = Math.round(seconds * this.sampleRate);
    // The frame ends now: it is the most recent `seconds` of sound.
    const samples = this.simulation.audioAt(t - seconds * 1000, length);
    return Promise.resolve({ t, sampleRate: this.sampleRate, samples });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
