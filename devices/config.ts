/**
 * The `device` section of the config, beside the devices it configures: which
 * device, its sensors and their intervals, calibration and the simulation.
 * The root schema (runtime/config/schema.ts) composes it.
 */
import { z } from 'zod';
import { duration } from '../runtime/config/units.js';
import type { DeepReadonly } from '../runtime/deep-freeze.js';
import { linuxSchema } from './linux/config.js';

/**
 * Every field of a sensor is optional: its interval has a per-sensor default
 * (`prefault`, which is parsed like a given value, so "1m" becomes 60000), not
 * a default applied only when the whole sensor block is missing.
 */
const sensorSchema = (interval: string) => z.strictObject({
  enabled: z.boolean().default(true),
  interval: duration(100).prefault(interval),
});

const weightSensorSchema = sensorSchema('1m').extend({
  /** Analog pin of the load-cell amplifier (10-bit ADC on Firmata boards). */
  pin: z.string().regex(/^A\d{1,2}$/, { error: 'expected an analog pin name like "A0"' }).default('A0'),
  /** Calibration: kg = offsetKg + count * kgPerCount (see devices/drivers/beehive-board.ts). */
  kgPerCount: z.number().positive().max(10).default(0.1),
  offsetKg: z.number().min(-1000).max(1000).default(0),
});

const soundSchema = sensorSchema('10s').extend({
  /** Seconds of audio captured per sound sample (the feature frame needs ~0.93 s at 2205 Hz). */
  frameSeconds: z.number().min(1).max(10).default(1),
});

const simulationSchema = z.strictObject({
  /** Simulation time factor: 60 runs one simulated minute per real second. */
  speed: z.number().positive().max(100_000).default(1),
  /** Seed of the simulator's random numbers, for repeatable runs. */
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
  startWeightKg: z.number().min(5).max(150).default(38),
  /** How long the colony sounds pre-swarm, then swarming, after `apiary sim swarm`. */
  preSwarm: duration(1_000).prefault('10m'),
  swarm: duration(1_000).prefault('5m'),
});

export const deviceSchema = z.strictObject({
  kind: z.enum(['simulated-beehive', 'firmata', 'linux'], {
    error: 'expected "simulated-beehive" (no hardware), "firmata" (a Firmata board on a serial port) or "linux" (sensors through the kernel\'s drivers, listed in device.linux.sensors)',
  }).default('simulated-beehive'),
  /** Serial port of a Firmata board; omitted = the first port that looks like a USB board (ttyACM*, ttyUSB*). */
  port: z.string().min(1).optional(),
  /** I2C address of the SHT31-D temperature/humidity sensor (datasheet: 0x44 or 0x45). */
  sht31Address: z.union([z.literal(0x44), z.literal(0x45)], { error: 'expected 0x44 (68) or 0x45 (69), the SHT31-D addresses' }).default(0x44),
  sensors: z.strictObject({
    temperature: sensorSchema('1m').prefault({}),
    humidity: sensorSchema('1m').prefault({}),
    weight: weightSensorSchema.prefault({}),
    sound: soundSchema.prefault({}),
  }).prefault({}),
  simulation: simulationSchema.prefault({}),
  /** kind: linux: the sensors, microphone and button read through the kernel (devices/linux/config.ts). */
  linux: linuxSchema.optional(),
}).refine((device) => device.kind !== 'linux' || (device.linux?.sensors.length ?? 0) > 0 || device.linux?.audio !== undefined, {
  error: 'device.kind "linux" needs device.linux.sensors (a list like [{ driver: ds18b20 }]) or device.linux.audio: see the README, "Hardware"',
  path: ['linux'],
});


export type DeviceConfig = DeepReadonly<z.output<typeof deviceSchema>>;
export type SensorName = keyof DeviceConfig['sensors'];

/** The node clock's speed: a simulated device's `simulation.speed`; real hardware runs in real time. */
export function clockSpeed(device: DeviceConfig): number {
  return device.kind.startsWith('simulated-') ? device.simulation.speed : 1;
}
