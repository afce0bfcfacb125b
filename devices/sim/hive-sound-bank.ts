/**
 * The simulated hive's sound: one real OSBH recording per colony state
 * (data/osbh-audio/, MIT, see its README), looped and phase-locked to node
 * time, with a little microphone noise.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import { packagePath } from '../../runtime/package-root.js';
import type { ColonySoundState } from './hive-simulation.js';
import { gaussianAt } from './seeded-random.js';
import { parseOsbhDat } from '../../models/features/audio-bands.js';

/** The OSBH clips are sampled at 2205 Hz (see data/osbh-audio/README.md). */
export const HIVE_SOUND_SAMPLE_RATE = 2205;
const CLIPS: Record<ColonySoundState, string> = { normal: 'Active.dat', 'pre-swarm': 'Pre-Swarm.dat', swarm: 'Swarm.dat' };
const MICROPHONE_NOISE = 0.003;

export class HiveSoundBank {
  private readonly clips = new Map<ColonySoundState, Float32Array>();

  constructor(private readonly dir: string = packagePath('devices', 'sim', 'data', 'osbh-audio')) {}

  async open(): Promise<void> {
    for (const [state, file] of Object.entries(CLIPS) as [ColonySoundState, string][]) {
      const full = path.join(this.dir, file);
      let text: string;
      try {
        text = await readFile(full, 'utf8');
      } catch (err) {
        throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `cannot read the hive sound ${full}`, { hint: 'reinstall Apiary: the simulated beehive ships this file', cause: err });
      }
      this.clips.set(state, parseOsbhDat(text, full));
    }
  }

  /** `length` samples of `state`'s clip, looped, starting where node time `t` falls in the loop. */
  render(state: ColonySoundState, t: number, length: number, seed: number): Float32Array {
    const clip = this.clips.get(state);
    if (!clip) throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, 'the hive sound bank is not open');
    const startSample = Math.floor((t / 1000) * HIVE_SOUND_SAMPLE_RATE);
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      const index = (((startSample + i) % clip.length) + clip.length) % clip.length;
      out[i] = (clip[index] ?? 0) + MICROPHONE_NOISE * gaussianAt(seed, 10, startSample + i);
    }
    return out;
  }
}
