/** The beehive application's defaults: its name and the rules a new hive decides by. */
import type { RuleInput } from '../../extensions/rules/config.js';

export const BEEHIVE_NAME = 'Apiary beehive';

export const DEFAULT_RULES: RuleInput[] = [
  { id: 'swarming', input: 'model.hive-sound.swarm', above: 0.8, clearAt: 0.5, for: '30s', severity: 'critical', message: 'The colony sounds like it is swarming' },
  { id: 'pre-swarm', input: 'model.hive-sound.pre-swarm', above: 0.8, clearAt: 0.5, for: '1m', severity: 'warning', message: 'The colony sounds like it is preparing to swarm' },
  { id: 'colony-weak', input: 'model.hive-thermal.strong_colony', below: 0.3, clearAt: 0.6, for: '6h', severity: 'warning', message: 'The hive temperature looks like a weak colony: have a look inside' },
  { id: 'hive-overheating', input: 'reading.temperature', above: 38, clearAt: 37, for: '10m', severity: 'critical', message: 'The hive is overheating' },
];
