/**
 * Home Assistant: retained discovery configs for every channel, model output
 * and rule once the node has started (so model labels are known), and a
 * retained ON/OFF per rule from start on, so a binary sensor has a state
 * before its rule first fires.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import { APIARY_VERSION } from '../../core/apiary-node.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { discoveryMessages } from './discovery.js';

export function createHomeAssistant(config: ApiaryConfig): Extension {
  async function publishDiscovery(ctx: NodeContext): Promise<void> {
    const { bus, identity, topics, device } = ctx;
    const messages = discoveryMessages({
      discoveryPrefix: config.homeAssistant.discoveryPrefix,
      nodeId: identity.nodeId,
      nodeName: config.node.name,
      deviceKind: device.kind,
      version: APIARY_VERSION,
      topics,
      channels: ctx.channels(),
      models: ctx.models.labels(),
      rules: config.decisions,
      ask: config.ask.enabled,
    });
    await Promise.all(messages.map((message) => bus.publishJson(message.topic, message.config, { retain: true, qos: 1 })));
    // Each rule's state as restored from disk (the rules saved it), else off.
    const saved = ctx.storage.state.get().rules;
    await Promise.all(config.decisions.map((rule) => bus.publish(topics.alert(rule.id), saved[rule.id]?.active === true ? 'ON' : 'OFF', { retain: true, qos: 1 })));
  }

  return {
    name: 'home-assistant',
    start(ctx) {
      ctx.events.on('started', () => publishDiscovery(ctx));
      ctx.events.on('decision', (record) => ctx.bus.publish(ctx.topics.alert(record.rule), record.active ? 'ON' : 'OFF', { retain: true, qos: 1 }));
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  };
}
