/**
 * The beehive: Apiary's first application. The hive's models and their
 * schedule, the sound level channel, the swarm simulation and the default
 * rules (defaults.ts) are all here; the runtime itself names no bee.
 */
import type { Application } from '../../core/extension.js';
import { declareBeehiveCommands } from './commands.js';

export const beehiveApp: Application = {
  name: 'beehive',
  description: 'a beehive: sound and brood-temperature models, swarm alerts, a simulated colony',
  extensions: [
    {
      name: 'beehive',
      enabled: () => true,
      load: async () => (await import('./hive-extension.js')).createHiveExtension,
      declareCommands: (registry) => declareBeehiveCommands(registry),
    },
  ],
};
