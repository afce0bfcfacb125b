/**
 * The simulated colony: what a real hive's sensors would see at a given node
 * time. Every value is a pure function of time (plus the injected swarm), so
 * the simulated board, the audio source and tests agree on the same hive.
 *
 * - Temperature and humidity: the real UrBAN recording (see urban-replay.ts),
 *   with sensor noise, and the rise in brood-nest temperature that precedes
 *   and accompanies swarming.
 * - Weight: a daily foraging cycle (the hive is lightest in the afternoon,
 *   when foragers are out) on top of a steady nectar flow, after Meikle et al.
 *   2008, "Within-day variation in continuous hive weight data as a measure of
 *   honey bee colony activity", Apidologie 39:694-707. A departing swarm takes
 *   bees and the honey in their crops with it: a step loss.
 * - Sound: the OSBH recordings for each colony state, looped.
 */
import type { Clock } from '../../runtime/clock.js';
import { gaussianAt } from './seeded-random.js';
import type { UrbanReplay } from './urban-replay.js';
import type { HiveSoundBank } from './hive-sound-bank.js';

export type ColonySoundState = 'normal' | 'pre-swarm' | 'swarm';

export interface HiveSimulationOptions {
  clock: Clock;
  replay: UrbanReplay;
  sounds: HiveSoundBank;
  seed: number;
  startWeightKg: number;
  preSwarmMs: number;
  swarmMs: number;
}

export interface SwarmSchedule {
  readonly preSwarmFrom: number;
  readonly swarmFrom: number;
  readonly swarmUntil: number;
}

/** Foragers out at the midday peak (kg): ~10,000 foragers of ~0.1 g each. */
const FORAGER_MASS_KG = 0.8;
/** Net nectar gain per day in a summer flow (kg/day). */
const NECTAR_FLOW_KG_PER_DAY = 0.3;
/** Bees and the honey in their crops leaving with a prime swarm (kg). */
const SWARM_LOSS_KG = 2.5;
/** Warming of the hive before and during swarming (°C). */
const SWARM_WARMING_C = 1.5;
/** Sensor noise, 1 sigma: SHT31-D typical accuracy is ±0.2 °C and ±2 %RH (datasheet table 1-2). */
const TEMPERATURE_NOISE_C = 0.05;
const HUMIDITY_NOISE_PCT = 0.3;
const WEIGHT_NOISE_KG = 0.02;
const NOISE_STEP_MS = 1000;
const DAY_MS = 86_400_000;

export class HiveSimulation {
  private swarm: SwarmSchedule | undefined;
  private readonly origin: number;

  constructor(private readonly options: HiveSimulationOptions) {
    this.origin = options.clock.now();
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /** Starts a swarm now: pre-swarm sound, then swarming, then the swarm leaves. */
  injectSwarm(): SwarmSchedule {
    const now = this.options.clock.now();
    this.swarm = {
      preSwarmFrom: now,
      swarmFrom: now + this.options.preSwarmMs,
      swarmUntil: now + this.options.preSwarmMs + this.options.swarmMs,
    };
    return this.swarm;
  }

  get swarmSchedule(): SwarmSchedule | undefined {
    return this.swarm;
  }

  soundStateAt(t: number): ColonySoundState {
    const s = this.swarm;
    if (!s || t < s.preSwarmFrom || t >= s.swarmUntil) return 'normal';
    return t < s.swarmFrom ? 'pre-swarm' : 'swarm';
  }

  temperatureAt(t: number): number {
    const recorded = this.options.replay.sampleAt(this.options.replay.recordingTime(t, this.origin)).temperature;
    const warming = this.soundStateAt(t) === 'normal' ? 0 : SWARM_WARMING_C;
    return recorded + warming + TEMPERATURE_NOISE_C * this.noise(1, t);
  }

  humidityAt(t: number): number {
    const recorded = this.options.replay.sampleAt(this.options.replay.recordingTime(t, this.origin)).humidity;
    return Math.min(100, Math.max(0, recorded + HUMIDITY_NOISE_PCT * this.noise(2, t)));
  }

  weightAt(t: number): number {
    const days = (t - this.origin) / DAY_MS;
    const hour = localHour(t);
    // Raised cosine between 08:00 and 19:00: foragers leave after sunrise and are all home by dusk.
    const foraging = hour > 8 && hour < 19 ? FORAGER_MASS_KG * 0.5 * (1 - Math.cos((2 * Math.PI * (hour - 8)) / 11)) : 0;
    const swarmLoss = this.swarm && t >= this.swarm.swarmUntil ? SWARM_LOSS_KG : 0;
    return this.options.startWeightKg + NECTAR_FLOW_KG_PER_DAY * days - foraging - swarmLoss + WEIGHT_NOISE_KG * this.noise(3, t);
  }

  /** `length` audio samples starting at node time `t`, of the colony's current sound. */
  audioAt(t: number, length: number): Float32Array {
    return this.options.sounds.render(this.soundStateAt(t), t, length, this.options.seed);
  }

  private noise(stream: number, t: number): number {
    return gaussianAt(this.options.seed, stream, Math.floor(t / NOISE_STEP_MS));
  }
}

function localHour(t: number): number {
  const d = new Date(t);
  return d.getHours() + d.getMinutes() / 60 + d.getSeconds() / 3600;
}
