/**
 * Builds the configured device. The one place that knows which parts make a
 * simulated beehive and which a Firmata board.
 */
import type { Clock } from '../runtime/clock.js';
import type { DeviceConfig } from './config.js';
import type { Device } from './device.js';
import { BeehiveBoard } from './drivers/beehive-board.js';
import { serialFirmata } from './drivers/serial-firmata.js';
import { LinuxDevice } from './linux/linux-device.js';
import { SimulatedBeehiveIO } from './io/simulated-beehive-io.js';
import { HiveSimulation } from './sim/hive-simulation.js';
import { HiveSoundBank } from './sim/hive-sound-bank.js';
import { SimulatedHiveAudio } from './sim/simulated-hive-audio.js';
import { UrbanReplay } from './sim/urban-replay.js';

export function createDevice(config: DeviceConfig, clock: Clock): Device {
  if (config.kind === 'linux' && config.linux) {
    return new LinuxDevice({ config: config.linux, clock });
  }
  if (config.kind === 'firmata') {
    return new BeehiveBoard({ config, clock, kind: 'firmata', io: serialFirmata({ path: config.port }) });
  }
  const replay = new UrbanReplay();
  const sounds = new HiveSoundBank();
  const simulation = new HiveSimulation({
    clock,
    replay,
    sounds,
    seed: config.simulation.seed,
    startWeightKg: config.simulation.startWeightKg,
    preSwarmMs: config.simulation.preSwarm,
    swarmMs: config.simulation.swarm,
  });
  return new BeehiveBoard({
    config,
    clock,
    kind: 'simulated-beehive',
    io: () => new SimulatedBeehiveIO({ simulation, sht31Address: config.sht31Address, weight: config.sensors.weight }),
    audio: new SimulatedHiveAudio(simulation, sounds),
    simulation: {
      events: ['swarm'],
      inject: (event) => {
        if (event !== 'swarm') throw new RangeError(`the simulated beehive plays only "swarm", not "${event}"`);
        return { ...simulation.injectSwarm() };
      },
      state: () => ({ sound: simulation.soundStateAt(clock.now()) }),
    },
    prepare: () => replay.open(),
  });
}
