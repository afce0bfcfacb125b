/**
 * The flow a node starts with (core Node-RED nodes only): raised decisions
 * (a swarm alert, an overheating hive) to a notification topic and the log,
 * and a daily weight summary. Topics and the broker come from environment
 * variables the supervisor sets (`${APIARY_...}`: Node-RED substitutes a
 * property that is exactly that), so the flow survives a port or id change.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { NodeTopics } from '../../bus/topics.js';
import { writeFileAtomic } from '../../storage/atomic-json-file.js';
import { FLOW_FILE } from './node-red-files.js';

/** Topics outside the node's own namespace: a local MQTT client may publish there (the node's namespace is the node's). */
export function flowsTopics(prefix: string, nodeId: string) {
  return { notify: `${prefix}-flows/${nodeId}/notify`, weightSummary: `${prefix}-flows/${nodeId}/weight-summary` };
}

/** What a flow can read as ${NAME} or env.get(NAME). */
export function flowEnv(topics: NodeTopics, prefix: string, nodeId: string, broker: { host: string; port: number } | undefined): Record<string, string> {
  const own = flowsTopics(prefix, nodeId);
  return {
    APIARY_NODE_ID: nodeId,
    APIARY_TOPIC_BASE: topics.base,
    APIARY_MQTT_HOST: broker?.host ?? '127.0.0.1',
    APIARY_MQTT_PORT: String(broker?.port ?? 1883),
    APIARY_DECISIONS_TOPIC: topics.decision('+'),
    APIARY_WEIGHT_TOPIC: topics.reading('weight'),
    APIARY_NOTIFY_TOPIC: own.notify,
    APIARY_WEIGHT_SUMMARY_TOPIC: own.weightSummary,
  };
}

const NOTIFY = `// Retained decisions come again each time Node-RED connects: only a live change notifies.
if (msg.retain) return null;
const d = msg.payload;
if (!d || d.state !== 'raised') return null;
msg.topic = env.get('APIARY_NOTIFY_TOPIC');
msg.payload = { node: env.get('APIARY_NODE_ID'), rule: d.rule, severity: d.severity, message: d.message, time: d.time };
return msg;`;

const SUMMARY = `const day = context.get('day') || { n: 0 };
if (msg.topic === 'summary') {
  if (day.n === 0) return null;
  context.set('day', { n: 0 });
  return { topic: env.get('APIARY_WEIGHT_SUMMARY_TOPIC'), payload: {
    node: env.get('APIARY_NODE_ID'), readings: day.n, from: day.from, to: day.to,
    first: day.first, last: day.last, change: Math.round((day.last - day.first) * 100) / 100, min: day.min, max: day.max,
  } };
}
const v = Number(msg.payload && msg.payload.value);
if (!Number.isFinite(v)) return null;
if (day.n === 0) { day.first = v; day.min = v; day.max = v; day.from = msg.payload.time; }
day.n += 1; day.last = v; day.to = msg.payload.time;
day.min = Math.min(day.min, v); day.max = Math.max(day.max, v);
context.set('day', day);
return null;`;

const TAB = 'a91a7e0000000001';
const BROKER = 'a91a7e0000000002';

/** The default flow, as Node-RED's flow file holds it. */
export function defaultFlow(): Record<string, unknown>[] {
  const z = TAB;
  return [
    { id: TAB, type: 'tab', label: 'Apiary', disabled: false, info: 'Made by Apiary when this node first ran Node-RED. Edit it freely: it is not written again while flows.json exists.' },
    {
      id: BROKER, type: 'mqtt-broker', name: 'this Apiary node', broker: '${APIARY_MQTT_HOST}', port: '${APIARY_MQTT_PORT}', clientid: '', autoConnect: true,
      usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true, autoUnsubscribe: true,
      birthTopic: '', birthQos: '0', birthPayload: '', closeTopic: '', closePayload: '', willTopic: '', willQos: '0', willPayload: '',
    },
    { id: 'a91a7e0000000010', type: 'comment', z, name: 'Alerts: a rule raised (swarming, overheating...) -> notify topic + log', info: '', x: 260, y: 40, wires: [] },
    { id: 'a91a7e0000000011', type: 'mqtt in', z, name: 'decisions', topic: '${APIARY_DECISIONS_TOPIC}', qos: '1', datatype: 'json', broker: BROKER, nl: false, rap: true, rh: 0, inputs: 0, x: 120, y: 100, wires: [['a91a7e0000000012']] },
    { id: 'a91a7e0000000012', type: 'function', z, name: 'raised -> notification', func: NOTIFY, outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x: 330, y: 100, wires: [['a91a7e0000000013', 'a91a7e0000000014']] },
    { id: 'a91a7e0000000013', type: 'mqtt out', z, name: 'notify', topic: '', qos: '1', retain: 'false', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker: BROKER, x: 550, y: 70, wires: [] },
    { id: 'a91a7e0000000014', type: 'debug', z, name: 'alert log', active: true, tosidebar: true, console: true, tostatus: true, complete: 'payload', targetType: 'msg', statusVal: 'payload.rule', statusType: 'msg', x: 560, y: 130, wires: [] },
    { id: 'a91a7e0000000020', type: 'comment', z, name: 'Daily weight summary at 20:00 -> weight-summary topic + log', info: '', x: 250, y: 180, wires: [] },
    { id: 'a91a7e0000000021', type: 'mqtt in', z, name: 'weight', topic: '${APIARY_WEIGHT_TOPIC}', qos: '0', datatype: 'json', broker: BROKER, nl: false, rap: true, rh: 0, inputs: 0, x: 110, y: 230, wires: [['a91a7e0000000023']] },
    { id: 'a91a7e0000000022', type: 'inject', z, name: 'every day at 20:00', props: [{ p: 'topic', vt: 'str' }], repeat: '', crontab: '00 20 * * *', once: false, onceDelay: 0.1, topic: 'summary', x: 140, y: 290, wires: [['a91a7e0000000023']] },
    { id: 'a91a7e0000000023', type: 'function', z, name: 'summarise the day', func: SUMMARY, outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x: 360, y: 260, wires: [['a91a7e0000000024', 'a91a7e0000000025']] },
    { id: 'a91a7e0000000024', type: 'mqtt out', z, name: 'weight summary', topic: '', qos: '1', retain: 'true', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker: BROKER, x: 580, y: 230, wires: [] },
    { id: 'a91a7e0000000025', type: 'debug', z, name: 'summary log', active: true, tosidebar: true, console: true, tostatus: false, complete: 'payload', targetType: 'msg', x: 570, y: 290, wires: [] },
  ];
}

/** Writes the default flow unless the user dir has a flow file (a user's flows are never overwritten). Returns whether it wrote. */
export async function writeDefaultFlow(userDir: string): Promise<boolean> {
  const file = path.join(userDir, FLOW_FILE);
  if (existsSync(file)) return false;
  await writeFileAtomic(file, `${JSON.stringify(defaultFlow(), null, 2)}\n`, { mode: 0o644 });
  return true;
}
