/**
 * The recorder: every reading, model output and decision is stored in the
 * node's append-only streams, put into its signed feed (sealed if the config
 * shares that stream privately) and published on MQTT, in that order; and
 * whether the device answers, on the retained `device` topic.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';

type Stream = 'readings' | 'models' | 'decisions';

export function createRecorder(config: ApiaryConfig): Extension {
  let ctx: NodeContext | undefined;

  /**
   * Appends to this node's feed if the config shares that stream, sealed if
   * it is private. `always`: decisions go into the signed feed even when not
   * shared (sealed to this node alone), so the node's own record of why it
   * acted is signed and append-only like everything it shares.
   */
  async function share(stream: Stream, body: unknown, { always = false } = {}): Promise<void> {
    const mesh = ctx?.mesh;
    if (!mesh || !ctx) return;
    const type = stream.replace(/s$/, '');
    const sealed = config.mesh.private.find((p) => p.stream === stream);
    if (sealed) await mesh.appendPrivate(type, body, sealed.recipients);
    else if (config.mesh.share.includes(stream)) await mesh.append(type, body);
    else if (always) await mesh.appendPrivate(type, body, []);
    else return;
    await ctx.events.emit('feed-append', type);
  }

  return {
    name: 'recorder',
    start(context) {
      ctx = context;
      const { events, storage, bus, topics } = context;
      events.on('reading', async (reading) => {
        const record = { ...reading, time: new Date(reading.t).toISOString() };
        // One stream for all channels: fewer files, so fewer 4 KiB pages rewritten per fsync.
        await storage.append('readings', record);
        await share('readings', record);
        await bus.publishJson(topics.reading(reading.channel), record);
      });
      events.on('model-output', async (output) => {
        const record = { ...output, time: new Date(output.t).toISOString() };
        await storage.append(`models.${output.model}`, record);
        await share('models', record);
        await bus.publishJson(topics.model(output.model), record);
      });
      // Whether the hardware answers, retained: a lost board shows at once (and in Home Assistant's availability).
      events.on('started', () => bus.publish(topics.device, context.device.state, { retain: true, qos: 1 }));
      events.on('device-state', (state) => bus.publish(topics.device, state, { retain: true, qos: 1 }));
      events.on('decision', async (record) => {
        await storage.append('decisions', record);
        await share('decisions', record, { always: true });
        await bus.publishJson(topics.decision(record.rule), record, { retain: true, qos: 1 });
      });
      return Promise.resolve();
    },
    stop() {
      ctx = undefined;
      return Promise.resolve();
    },
  };
}
