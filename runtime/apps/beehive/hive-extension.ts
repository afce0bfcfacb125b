/**
 * The beehive on the kernel: the hive's models (sound on every audio frame,
 * brood temperature every `models.thermal.every` over a day of readings,
 * refilled from disk after a restart), the sound level as a reading channel,
 * the swarm simulation command, and the simulated colony's state in status.
 */
import type { Reading } from '../../../devices/device.js';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { declareBeehiveCommands } from './commands.js';
import { HiveModels, SOUND_LEVEL_CHANNEL, THERMAL_MODEL } from './hive-models.js';

/** Most records read back to refill the thermal window after a restart. */
const MAX_RESTORE_RECORDS = 50_000;

export function createHiveExtension(config: ApiaryConfig): Extension {
  let ctx: NodeContext | undefined;

  async function thermalTick(context: NodeContext, models: HiveModels): Promise<void> {
    const output = await models.runThermal(context.clock.now());
    if (output) await context.events.emit('model-output', output);
  }

  /** After a restart, refills the thermal model's window from the readings on disk (in the background). */
  async function restoreThermalWindow(context: NodeContext, models: HiveModels): Promise<void> {
    const stream = await context.storage.stream('readings');
    const stats = stream.stats();
    // Enough records to cover the window even with every channel interleaved.
    const sensors = config.device.sensors;
    const perWindow = Math.ceil(config.models.thermal.window / Math.min(sensors.temperature.interval, sensors.sound.interval)) * 4;
    const from = Math.max(stats.firstSeq, stats.nextSeq - Math.min(perWindow, MAX_RESTORE_RECORDS));
    const stored: Reading[] = [];
    for await (const record of stream.read(from)) {
      try {
        const r = JSON.parse(record.payload.toString('utf8')) as Partial<Reading>;
        if ((r.channel === 'temperature' || r.channel === 'humidity') && typeof r.value === 'number' && typeof r.t === 'number') {
          stored.push({ channel: r.channel, value: r.value, unit: r.unit ?? '', t: r.t });
        }
      } catch {
        context.counters.increment('storage.unreadable_records');
      }
    }
    const restored = models.restoreWindow(stored, context.clock.now());
    if (restored > 0) context.logger.info({ readings: restored }, 'thermal window restored from disk');
  }

  return {
    name: 'beehive',
    start(context) {
      ctx = context;
      const models = new HiveModels(config.models, context.models);
      models.use();
      if (context.device.hasAudio) context.addChannel(SOUND_LEVEL_CHANNEL);
      declareBeehiveCommands(context.commands, { device: context.device, logger: context.logger });
      const { events } = context;
      events.on('reading', (reading) => {
        models.onReading(reading);
        // A new node runs the thermal model as soon as it has enough readings, not a full period later.
        if (models.windowSize === config.models.thermal.minReadings && !context.latest.models[THERMAL_MODEL]) context.track(thermalTick(context, models));
      });
      events.on('audio', async (frame) => {
        await context.modelsReady;
        const { soundLevel, output } = await models.onAudio(frame);
        await events.emit('reading', soundLevel);
        if (output) await events.emit('model-output', output);
      });
      events.on('started', () => {
        if (!config.models.thermal.enabled) return;
        context.track(restoreThermalWindow(context, models));
        context.every(config.models.thermal.every, () => context.track(thermalTick(context, models)));
      });
      return Promise.resolve();
    },
    stop() {
      ctx = undefined;
      return Promise.resolve();
    },
    status: () => {
      const state = ctx?.device.simulation?.state();
      return state?.sound !== undefined ? { soundState: state.sound } : {};
    },
  };
}
