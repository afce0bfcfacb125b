/**
 * The recorder: every reading, model output and decision is stored once and
 * published on MQTT, in that order; and whether the device answers, on the
 * retained `device` topic. A stream the mesh shares is stored as an entry of
 * the node's signed feed, which is then its log (one write, one fsync: issue
 * 16); a stream the config seals for recipients (and decisions not shared,
 * sealed to this node alone) as a private entry of the feed, which is then
 * its log the same way; any other stream, or any with the mesh off, in its
 * own append-only log.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';

type Stream = 'readings' | 'models' | 'decisions';

export function createRecorder(config: ApiaryConfig): Extension {
  let ctx: NodeContext | undefined;

  /**
   * Stores one record of `stream` under the stream name `name`. `always`:
   * decisions go into the signed feed even when not shared (sealed to this
   * node alone), so the node's own record of why it acted is signed and
   * append-only like everything it shares.
   */
  async function store(context: NodeContext, stream: Stream, name: string, body: unknown, { always = false } = {}): Promise<void> {
    const { storage } = context;
    const mesh = ctx && context.mesh; // none after stop: a late record is still stored, and not signed into the feed
    const type = stream.replace(/s$/, '');
    const sealed = config.mesh.private.find((p) => p.stream === stream);
    if (mesh && sealed) {
      await storage.appendToFeed(name, body, (record) => mesh.appendPrivate(type, record, sealed.recipients), { sealed: true });
    } else if (mesh && config.mesh.share.includes(stream)) {
      await storage.appendToFeed(name, body, (record) => mesh.append(type, record));
    } else if (mesh && always) {
      await storage.appendToFeed(name, body, (record) => mesh.appendPrivate(type, record, []), { sealed: true });
    } else {
      await storage.append(name, body);
      return;
    }
    await context.events.emit('feed-append', type);
  }

  return {
    name: 'recorder',
    start(context) {
      ctx = context;
      const { events, bus, topics } = context;
      events.on('reading', async (reading) => {
        const record = { ...reading, time: new Date(reading.t).toISOString() };
        // One stream for all channels: fewer files, so fewer 4 KiB pages rewritten per fsync.
        await store(context, 'readings', 'readings', record);
        await bus.publishJson(topics.reading(reading.channel), record);
      });
      events.on('model-output', async (output) => {
        const record = { ...output, time: new Date(output.t).toISOString() };
        await store(context, 'models', `models.${output.model}`, record);
        await bus.publishJson(topics.model(output.model), record);
      });
      // Whether the hardware answers, retained: a lost board shows at once (and in Home Assistant's availability).
      events.on('started', () => bus.publish(topics.device, context.device.state, { retain: true, qos: 1 }));
      events.on('device-state', (state) => bus.publish(topics.device, state, { retain: true, qos: 1 }));
      events.on('decision', async (record) => {
        await store(context, 'decisions', 'decisions', record, { always: true });
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
