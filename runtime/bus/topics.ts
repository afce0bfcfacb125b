/**
 * The MQTT topic scheme, in one place. Documented in README ("MQTT topics");
 * change both together.
 *
 *   <prefix>/<nodeId>/state                  online | offline (retained; offline is the last will)
 *   <prefix>/<nodeId>/info                   who this node is: key, channels, models, rules (retained)
 *   <prefix>/<nodeId>/device                 connected | disconnected: whether the device's hardware answers (retained)
 *   <prefix>/<nodeId>/readings/<channel>     one reading: {"value","unit","t","time"}
 *   <prefix>/<nodeId>/models/<model>         one model output: {"label","probabilities",...}
 *   <prefix>/<nodeId>/decisions/<rule>       current decision of a rule (retained)
 *   <prefix>/<nodeId>/alerts/<rule>          ON | OFF: whether that rule is raised, from start on (retained; Home Assistant)
 *   <prefix>/<nodeId>/cmd/<command>          requests to the node: every command of the registry (`apiary commands`)
 *   <prefix>/<nodeId>/reply/<requestId>      answers to requests that named this topic
 */
export interface NodeTopics {
  readonly base: string;
  readonly state: string;
  readonly info: string;
  /** `connected` or `disconnected` (retained): whether the device's hardware answers. */
  readonly device: string;
  reading(channel: string): string;
  model(model: string): string;
  decision(ruleId: string): string;
  /** `ON` or `OFF`, retained: whether a rule's decision is raised, from start on (Home Assistant's binary sensors). */
  alert(ruleId: string): string;
  command(name: string): string;
  /** Wildcard subscription for every command. */
  readonly commands: string;
  reply(requestId: string): string;
  readonly replies: string;
}

export function nodeTopics(prefix: string, nodeId: string): NodeTopics {
  const base = `${prefix}/${nodeId}`;
  return {
    base,
    state: `${base}/state`,
    info: `${base}/info`,
    device: `${base}/device`,
    reading: (channel) => `${base}/readings/${channel}`,
    model: (model) => `${base}/models/${model}`,
    decision: (ruleId) => `${base}/decisions/${ruleId}`,
    alert: (ruleId) => `${base}/alerts/${ruleId}`,
    command: (name) => `${base}/cmd/${name}`,
    commands: `${base}/cmd/#`,
    reply: (requestId) => `${base}/reply/${requestId}`,
    replies: `${base}/reply/#`,
  };
}
