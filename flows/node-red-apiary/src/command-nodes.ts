/**
 * `apiary-command` (any command of the node's registry, request/reply) and
 * `apiary-shared` (the mesh's shared document: get, set, watch). A refusal or
 * a timeout goes to done(err), so Catch nodes see it with the message.
 */
import { canonicalJson } from '../../../runtime/canonical-json.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { ApiaryFlowError, type ApiaryConnection } from './connection.js';
import { connectionOf } from './config-node.js';
import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red.js';
import { readRepeatedly } from './poll.js';
import { followConnection } from './status.js';

interface CommandDef extends NodeDef {
  server?: string;
  command?: string;
  /** Seconds. */
  timeout?: string | number;
}

interface SharedDef extends CommandDef {
  action?: string;
  map?: string;
  key?: string;
  /** watch: seconds between reads of the shared document. */
  interval?: string | number;
}

/** A positive number of seconds from the dialog, or the error naming the field. */
export function seconds(field: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ApiaryFlowError(ErrorCodes.CONFIG_INVALID, `${field}: "${String(value)}" is not a positive number of seconds`);
  return n;
}

/** Connection and timeout, or null after reporting the problem on the node. */
export function setUp(RED: NodeAPI, node: RedNode, def: CommandDef): { connection: ApiaryConnection; timeoutMs: number } | null {
  const connection = connectionOf(RED, def.server);
  let timeoutMs = 10_000;
  try {
    timeoutMs = seconds('timeout', def.timeout, 10) * 1000;
  } catch (err) {
    node.status({ fill: 'red', shape: 'ring', text: 'bad timeout' });
    node.error((err as Error).message);
    return null;
  }
  if (typeof connection === 'string') {
    node.status({ fill: 'red', shape: 'ring', text: 'no connection' });
    node.error(connection);
    return null;
  }
  return { connection, timeoutMs };
}

/** msg.payload as a command's arguments: an object, or nothing. */
function argsOf(payload: unknown): Record<string, unknown> | undefined {
  if (payload === undefined || payload === null || payload === '') return undefined;
  if (typeof payload === 'object' && !Array.isArray(payload) && !Buffer.isBuffer(payload)) return payload as Record<string, unknown>;
  throw new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, `msg.payload: a command's arguments are an object (like {"map": "thresholds", "key": "swarm", "value": 0.9} for shared/set), not ${Array.isArray(payload) ? 'an array' : typeof payload}`);
}

/** Runs `work` for one input message: the status shows it, errors go to done(err). */
function handle(node: RedNode, label: string, work: () => Promise<NodeMessage | undefined>, send: SendFn, done: DoneFn): void {
  node.status({ fill: 'blue', shape: 'ring', text: label });
  work().then((out) => {
    node.status({ fill: 'green', shape: 'dot', text: `${label} ok` });
    if (out) send(out);
    done();
  }, (err: unknown) => {
    const error = err instanceof Error ? err : new Error(String(err));
    node.status({ fill: 'red', shape: 'dot', text: `${label} failed` });
    done(error);
  });
}

export function registerCommandNodes(RED: NodeAPI): void {
  RED.nodes.registerType('apiary-command', function ApiaryCommand(this: RedNode, def: CommandDef) {
    RED.nodes.createNode(this, def);
    commandNode(RED, this, def);
  });
  RED.nodes.registerType('apiary-shared', function ApiaryShared(this: RedNode, def: SharedDef) {
    RED.nodes.createNode(this, def);
    sharedNode(RED, this, def);
  });
}

function commandNode(RED: NodeAPI, node: RedNode, def: CommandDef): void {
  const parts = setUp(RED, node, def);
  if (!parts) return;
  const { connection, timeoutMs } = parts;
  const status = followConnection(node, connection);
  node.on('input', (msg, send, done) => {
    const name = (def.command ?? '').trim() || (typeof msg.command === 'string' ? msg.command.trim() : '');
    if (!name) return done(new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, 'command: none; set the node\'s command (like status) or msg.command'));
    handle(node, name, async () => {
      const result = await connection.request(name, argsOf(msg.payload), timeoutMs);
      return { ...msg, payload: result, apiary: { origin: connection.nodeId, command: name } };
    }, send, done);
  });
  node.on('close', (_removed, done) => { status.stop(); done(); });
}

function sharedNode(RED: NodeAPI, node: RedNode, def: SharedDef): void {
  const parts = setUp(RED, node, def);
  if (!parts) return;
  const { connection, timeoutMs } = parts;
  const action = def.action === 'set' || def.action === 'watch' ? def.action : 'get';
  const where = (msg: NodeMessage) => ({
    map: (def.map ?? '').trim() || (typeof msg.map === 'string' ? msg.map : ''),
    key: (def.key ?? '').trim() || (typeof msg.key === 'string' ? msg.key : ''),
  });
  const read = async (map: string, key: string): Promise<unknown> => {
    const doc = (await connection.request('shared/get', undefined, timeoutMs)) as Record<string, Record<string, unknown> | undefined> | undefined;
    if (!map) return doc ?? {};
    if (!key) return doc?.[map] ?? null;
    return doc?.[map]?.[key] ?? null;
  };
  const out = (msg: NodeMessage, map: string, key: string, value: unknown): NodeMessage => ({
    ...msg, topic: [map, key].filter(Boolean).join('/'), payload: value, apiary: { origin: connection.nodeId, map, key },
  });

  if (action !== 'watch') {
    node.on('input', (msg, send, done) => {
      const { map, key } = where(msg);
      handle(node, `shared ${action}`, async () => {
        if (action === 'get') return out(msg, map, key, await read(map, key));
        if (!map || !key) throw new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, `${map ? 'key' : 'map'}: none; set the node's ${map ? 'key' : 'map'} or msg.${map ? 'key' : 'map'} (like thresholds / swarm)`);
        if (msg.payload === undefined) throw new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, 'msg.payload: none; it is the value to set (any JSON value)');
        const result = (await connection.request('shared/set', { map, key, value: msg.payload }, timeoutMs)) as { value?: unknown } | undefined;
        return out(msg, map, key, result?.value ?? msg.payload);
      }, send, done);
    });
    const status = followConnection(node, connection);
    node.on('close', (_removed, done) => { status.stop(); done(); });
    return;
  }

  // watch: the node publishes no shared-state topic, so the document is read every `interval` (and on any input),
  // and a message goes out when the watched part differs from the last read (the first read included).
  let intervalMs = 10_000;
  try {
    intervalMs = seconds('interval', def.interval, 10) * 1000;
  } catch (err) {
    node.error((err as Error).message);
    return;
  }
  const status = followConnection(node, connection);
  const { map, key } = where({});
  let last: string | undefined;
  readRepeatedly(node, status, intervalMs, () => read(map, key), (value) => {
    const text = canonicalJson(value);
    if (text === last) return;
    last = text;
    status.show({ fill: 'green', shape: 'dot', text: 'changed' });
    node.send(out({}, map, key, value));
  });
}
