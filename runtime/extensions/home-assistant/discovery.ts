/**
 * Home Assistant MQTT discovery: one retained config message per entity, so
 * Home Assistant pointed at the broker shows every sensor, model output and
 * alert of the node without any YAML. Unique ids are derived from the node id
 * (which derives from its key), so they are stable across restarts.
 * Reference: home-assistant.io/integrations/mqtt/#mqtt-discovery
 */
import type { ChannelSpec } from '../../../devices/device.js';
import type { NodeTopics } from '../../bus/topics.js';
import type { RuleConfig } from '../../config/schema.js';

export interface DiscoveryMessage {
  readonly topic: string;
  readonly config: Record<string, unknown>;
}

export interface DiscoveryInput {
  discoveryPrefix: string;
  nodeId: string;
  nodeName: string;
  deviceKind: string;
  version: string;
  topics: NodeTopics;
  channels: readonly ChannelSpec[];
  /** Model name -> output labels. */
  models: Record<string, readonly string[]>;
  rules: readonly RuleConfig[];
  /** Offer "ask the hive" (ask.enabled): a text entity to type a question into, and a sensor with the answer. */
  ask: boolean;
}

/** The requestId Home Assistant's questions carry: their answers come back on reply/<this>. */
export const HA_ASK_REQUEST_ID = 'home-assistant-ask';
/** MAX_QUESTION_CHARS of the ask command. */
const MAX_QUESTION = 200;

export function discoveryMessages(input: DiscoveryInput): DiscoveryMessage[] {
  const { discoveryPrefix, nodeId, topics } = input;
  const objectBase = `apiary_${nodeId}`;
  const device = {
    identifiers: [objectBase],
    name: input.nodeName,
    manufacturer: 'Apiary',
    model: input.deviceKind,
    sw_version: input.version,
  };
  // Available while the node is online and its hardware answers (a lost board makes its sensors unavailable, not stale).
  const availability = {
    availability: [
      { topic: topics.state, payload_available: 'online', payload_not_available: 'offline' },
      { topic: topics.device, payload_available: 'connected', payload_not_available: 'disconnected' },
    ],
    availability_mode: 'all',
  };
  // Which software published the discovery config (Home Assistant shows it and logs it with the entity).
  const origin = { name: 'Apiary', sw_version: input.version };
  const messages: DiscoveryMessage[] = [];
  const entity = (component: string, objectId: string, config: Record<string, unknown>) => {
    const uniqueId = `${objectBase}_${objectId.replace(/[^a-zA-Z0-9_]/g, '_')}`;
    messages.push({
      topic: `${discoveryPrefix}/${component}/${objectBase}/${objectId.replace(/[^a-zA-Z0-9_-]/g, '_')}/config`,
      config: { ...config, unique_id: uniqueId, device, origin, ...availability },
    });
  };
  for (const channel of input.channels) {
    entity('sensor', channel.name, {
      name: channel.label,
      state_topic: topics.reading(channel.name),
      value_template: '{{ value_json.value }}',
      unit_of_measurement: channel.unit,
      ...(channel.deviceClass ? { device_class: channel.deviceClass } : {}),
      state_class: 'measurement',
      suggested_display_precision: channel.precision,
    });
  }
  for (const [model, labels] of Object.entries(input.models)) {
    for (const label of labels) {
      entity('sensor', `${model}_${label}`, {
        name: `${model}: ${label}`,
        state_topic: topics.model(model),
        value_template: `{{ (value_json.probabilities['${label}'] * 100) | round(1) }}`,
        unit_of_measurement: '%',
        state_class: 'measurement',
        icon: 'mdi:bee',
      });
    }
  }
  for (const rule of input.rules) {
    entity('binary_sensor', rule.id, {
      // A short name from the rule id: the whole message reads badly as an entity name; it stays in the attributes.
      name: ruleName(rule.id),
      // Its own retained ON/OFF topic, published from start: the decision topic has no message until the rule first fires.
      state_topic: topics.alert(rule.id),
      payload_on: 'ON',
      payload_off: 'OFF',
      json_attributes_topic: topics.decision(rule.id),
      device_class: 'problem',
    });
  }
  if (input.ask) {
    // A question typed into the text entity becomes an `ask` command (the node's registry, as over MQTT and the CLI);
    // its reply, on the reply topic named by the request id, is the answer sensor's state (HA states hold 255 characters).
    entity('text', 'ask', {
      name: 'Ask the hive',
      command_topic: topics.command('ask'),
      command_template: `{"requestId":"${HA_ASK_REQUEST_ID}","args":{"question":{{ value | tojson }}}}`,
      min: 1,
      max: MAX_QUESTION,
      mode: 'text',
      icon: 'mdi:chat-question',
    });
    entity('sensor', 'answer', {
      name: 'Hive answer',
      state_topic: topics.reply(HA_ASK_REQUEST_ID),
      value_template: '{{ (value_json.result.answer if value_json.ok else value_json.error)[:255] }}',
      json_attributes_topic: topics.reply(HA_ASK_REQUEST_ID),
      json_attributes_template: "{{ {'question': value_json.result.question, 'intent': value_json.result.intent} | tojson if value_json.ok else {'error': value_json.code} | tojson }}",
      icon: 'mdi:bee',
    });
  }
  return messages;
}

/** "hive-overheating" -> "Hive overheating". */
export function ruleName(id: string): string {
  const words = id.replace(/[-_.]+/g, ' ').trim();
  return words.length === 0 ? id : words[0]?.toUpperCase() + words.slice(1);
}
