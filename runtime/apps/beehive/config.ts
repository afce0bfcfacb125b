/**
 * The beehive's sections of the config: its two models under `models`
 * (`models.thermal`, `models.sound`). The root schema composes them.
 */
import { z } from 'zod';
import { duration } from '../../config/units.js';
import type { DeepReadonly } from '../../deep-freeze.js';

export const hiveModelSections = {
  thermal: z.strictObject({
    enabled: z.boolean().default(true),
    /** How often the brood-temperature model runs, and over how much history. */
    every: duration(1_000).prefault('15m'),
    window: duration(60_000).prefault('24h'),
    /** Fewest readings in the window before the model is asked at all. */
    minReadings: z.number().int().min(2).max(100_000).default(4),
  }).prefault({}),
  sound: z.strictObject({
    /** The hive-sound model runs on every sound sample. */
    enabled: z.boolean().default(true),
  }).prefault({}),
};

export type HiveModelsConfig = DeepReadonly<{ [K in keyof typeof hiveModelSections]: z.output<(typeof hiveModelSections)[K]> }>;
