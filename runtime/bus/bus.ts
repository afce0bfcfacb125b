/**
 * The transport seam: how the node publishes and receives MQTT messages.
 * Two implementations, one file each:
 * - EmbeddedBus: straight into the node's own aedes broker, no socket (the default);
 * - MqttBus: an MQTT.js client to an external broker (bus.url), with the
 *   node's state topic as its retained last will.
 */
export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1;
}

export interface Bus {
  /** Connects, and publishes "online" (retained) to the state topic. */
  start(): Promise<void>;
  publish(topic: string, payload: string | Buffer, options?: PublishOptions): Promise<void>;
  publishJson(topic: string, value: unknown, options?: PublishOptions): Promise<void>;
  subscribe(filter: string, handler: MessageHandler): Promise<void>;
  /** Removes one subscribe(filter, handler); the handler gets nothing more. */
  unsubscribe(filter: string, handler: MessageHandler): Promise<void>;
  /** Publishes "offline" (retained) and disconnects. */
  stop(): Promise<void>;
}

/** MQTT topic filter matching (MQTT 3.1.1 section 4.7: + one level, # the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
