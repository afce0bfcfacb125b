/**
 * `apiary-reading`, `apiary-model`, `apiary-decision`: the node's readings,
 * model outputs and decisions as messages, with the fields the MQTT payload
 * carries (README, "MQTT topics"). Messages Apiary does not recognise (not
 * JSON, no number) are warned about and dropped, never sent half-typed.
 */
import type { ApiaryConnection, TopicMessage } from './connection.js';
import { connectionOf } from './config-node.js';
import type { NodeAPI, NodeDef, NodeMessage, NodeStatus, RedNode } from './red.js';
import { followConnection, shortNumber } from './status.js';

interface InDef extends NodeDef {
  server?: string;
  channel?: string;
  model?: string;
  label?: string;
  rule?: string;
  /** decision: which states pass (`all`, `raised`, `cleared`). */
  only?: string;
  /** decision: also send the retained current decision at deploy. */
  retained?: boolean;
}

type Convert = (message: TopicMessage, json: Record<string, unknown>) => { msg: NodeMessage; status: NodeStatus } | string | undefined;

/** The shared part of the three: subscribe, parse, convert, send; close unsubscribes. */
function inNode(RED: NodeAPI, node: RedNode, def: InDef, filter: string, convert: Convert, { retained = false } = {}): void {
  const connection: ApiaryConnection | string = connectionOf(RED, def.server);
  if (typeof connection === 'string') {
    node.status({ fill: 'red', shape: 'ring', text: 'no connection' });
    node.error(connection);
    return;
  }
  const status = followConnection(node, connection);
  const unsubscribe = connection.subscribe(filter, (message) => {
    if (message.retained && !retained) return;
    let json: unknown;
    try {
      json = JSON.parse(message.payload.toString('utf8'));
    } catch {
      node.warn(`${message.topic}: the payload is not JSON; dropped`);
      return;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return node.warn(`${message.topic}: the payload is not a JSON object; dropped`);
    const out = convert(message, json as Record<string, unknown>);
    if (out === undefined) return;
    if (typeof out === 'string') return node.warn(`${message.topic}: ${out}; dropped`);
    status.show(out.status);
    node.send(out.msg);
  });
  node.on('close', (_removed, done) => {
    unsubscribe();
    status.stop();
    done();
  });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** The topic's last levels (a channel, model or rule name). */
const nameOf = (message: TopicMessage): string => message.path.slice(1).join('/');
const one = (name: string | undefined): string => (name ?? '').trim() || '#';

export function registerInNodes(RED: NodeAPI): void {
  RED.nodes.registerType('apiary-reading', function ApiaryReading(this: RedNode, def: InDef) {
    RED.nodes.createNode(this, def);
    inNode(RED, this, def, `readings/${one(def.channel)}`, (message, json) => {
      const value = num(json.value);
      if (value === undefined) return 'no numeric "value"';
      const channel = str(json.channel) ?? nameOf(message);
      const unit = str(json.unit);
      return {
        msg: { topic: message.topic, payload: value, apiary: { origin: message.origin, channel, unit, t: num(json.t), time: str(json.time) } },
        status: { fill: 'green', shape: 'dot', text: `${shortNumber(value)}${unit ? ` ${unit}` : ''}` },
      };
    });
  });

  RED.nodes.registerType('apiary-model', function ApiaryModel(this: RedNode, def: InDef) {
    RED.nodes.createNode(this, def);
    const wanted = (def.label ?? '').trim();
    inNode(RED, this, def, `models/${one(def.model)}`, (message, json) => {
      const probabilities = Object.fromEntries(Object.entries(json.probabilities ?? {}).filter((e): e is [string, number] => num(e[1]) !== undefined));
      const labels = Object.keys(probabilities);
      if (labels.length === 0) return 'no "probabilities"';
      // The configured label's probability, else the most likely label's.
      const label = wanted || labels.reduce((a, b) => ((probabilities[b] ?? 0) > (probabilities[a] ?? 0) ? b : a));
      const p = probabilities[label];
      if (p === undefined) return `label "${label}" is not among this model's labels (${labels.join(', ')}); fix the node's label`;
      return {
        msg: {
          topic: message.topic,
          payload: p,
          apiary: { origin: message.origin, model: str(json.model) ?? nameOf(message), version: str(json.version), label, top: str(json.label), probabilities, t: num(json.t), time: str(json.time) },
        },
        status: { fill: 'green', shape: 'dot', text: `${label} ${p.toFixed(2)}` },
      };
    });
  });

  RED.nodes.registerType('apiary-decision', function ApiaryDecision(this: RedNode, def: InDef) {
    RED.nodes.createNode(this, def);
    const only = def.only === 'raised' || def.only === 'cleared' ? def.only : 'all';
    inNode(RED, this, def, `decisions/${one(def.rule)}`, (message, json) => {
      const state = str(json.state);
      const rule = str(json.rule) ?? nameOf(message);
      if (state !== 'raised' && state !== 'cleared') return 'no "state" (raised or cleared)';
      if (only !== 'all' && state !== only) return undefined;
      return {
        msg: {
          topic: message.topic,
          payload: json,
          apiary: { origin: message.origin, rule, state, severity: str(json.severity), input: str(json.input), t: num(json.t), time: str(json.time), retained: message.retained },
        },
        status: state === 'raised' ? { fill: 'red', shape: 'dot', text: `${rule} raised` } : { fill: 'green', shape: 'dot', text: `${rule} cleared` },
      };
    }, { retained: def.retained === true });
  });
}
