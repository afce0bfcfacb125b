/** `sim/swarm`: the beehive application's simulation command. Light: `apiary commands` declares it offline. */
import { z } from 'zod';
import type { Device } from '../../../devices/device.js';
import { commandRefused, type CommandRegistry } from '../../commands/command-registry.js';
import type { Logger } from '../../log.js';

const NO_SIMULATION = 'this node has no simulated device: a swarm can only be injected into a simulated beehive';

export function declareBeehiveCommands(registry: CommandRegistry, parts?: { device: Device; logger: Logger }): void {
  registry.define('sim/swarm', {
    description: 'make the simulated colony swarm: pre-swarm sound, then swarming, then the swarm leaves',
    args: z.object({}),
    write: true,
    unavailable: () => (parts?.device.simulation?.events.includes('swarm') ? undefined : NO_SIMULATION),
    handler: () => {
      const simulation = parts?.device.simulation;
      if (!simulation?.events.includes('swarm')) throw commandRefused(NO_SIMULATION);
      const schedule = simulation.inject('swarm');
      parts?.logger.info({ schedule }, 'swarm injected into the simulated hive');
      return schedule;
    },
  });
}
