/**
 * One MQTT.js connection to an Apiary node's broker, shared by every palette
 * node that uses the same `apiary-node` config node. It learns the node id
 * from the retained `<prefix>/<id>/info` topic when none is configured,
 * subscribes once to `<prefix>/<id>/#` (one subscription, so overlapping
 * filters never deliver a message twice), routes messages to the palette
 * nodes, and runs commands over `cmd/<name>` with their answer on
 * `reply/<requestId>` (README, "MQTT topics"; runtime/extensions/mqtt-commands).
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { ErrorCodes } from '../../../runtime/errors.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface ConnectionOptions {
  host: string;
  port: number;
  prefix: string;
  /** Empty: the first node whose retained info arrives. */
  nodeId?: string;
  username?: string;
  password?: string;
  /** Start of the MQTT client id (a random suffix follows). */
  clientName: string;
}

export interface ApiaryInfo {
  nodeId: string;
  name?: string;
  version?: string;
  device?: string;
  models: { name: string; version?: string }[];
  rules: { id: string; input?: string; severity?: string; message?: string }[];
}

/** A message under the node's own namespace: `path` is the topic after `<prefix>/<id>/`. */
export interface TopicMessage {
  readonly topic: string;
  readonly origin: string;
  readonly path: readonly string[];
  readonly payload: Buffer;
  readonly retained: boolean;
}

export type TopicListener = (message: TopicMessage) => void;

/**
 * An error with a stable code (Apiary's codes from runtime/errors.ts, or the node's reply code). Node-RED gives
 * a Catch node `msg.error.message` as "ApiaryError: <message>" and `msg.error.code` as the code.
 */
export class ApiaryFlowError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'ApiaryError';
  }
}

export const NODE_ID = /^[a-z2-7]{12}$/;
export const COMMAND_NAME = /^[a-z][a-z0-9-]*(\/[a-z][a-z0-9-]*)*$/;
const PREFIX = /^[^#+/]+(\/[^#+/]+)*$/;

interface Pending {
  name: string;
  resolve(result: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Whether an MQTT filter (relative, like `readings/+`) matches a relative topic path. */
export function filterMatches(filter: readonly string[], path: readonly string[]): boolean {
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '#') return true;
    if (i >= path.length) return false;
    if (filter[i] !== '+' && filter[i] !== path[i]) return false;
  }
  return filter.length === path.length;
}

/** Checks the config node's fields; the message names the field and the fix. */
export function checkOptions(options: ConnectionOptions): void {
  if (!options.host) throw new ApiaryFlowError(ErrorCodes.CONFIG_INVALID, 'host: empty; give the Apiary node\'s address, like 127.0.0.1');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new ApiaryFlowError(ErrorCodes.CONFIG_INVALID, `port: ${String(options.port)} is not a port number (1-65535); the node's broker listens on 1883 by default`);
  }
  if (!PREFIX.test(options.prefix)) throw new ApiaryFlowError(ErrorCodes.CONFIG_INVALID, `topic prefix: "${options.prefix}" must be topic levels without + or # (the node's bus.topicPrefix, apiary by default)`);
  if (options.nodeId && !NODE_ID.test(options.nodeId)) {
    throw new ApiaryFlowError(ErrorCodes.CONFIG_INVALID, `node id: "${options.nodeId}" is not 12 characters a-z, 2-7 (\`apiary id\` prints it); leave it empty to use the node found on the broker`);
  }
}

export class ApiaryConnection {
  state: ConnectionState = 'connecting';
  /** `online` or `offline`: what the node itself says on its retained state topic. */
  nodeState: string | undefined;
  nodeId: string | undefined;
  info: ApiaryInfo | undefined;
  lastError: string | undefined;
  /** Reading channels seen on the bus (the info topic does not list them). */
  readonly channels = new Set<string>();
  /** Other nodes whose info was seen on the same broker while discovering (then the node id should be set). */
  readonly othersSeen = new Set<string>();
  private readonly client: MqttClient;
  private readonly listeners = new Map<TopicListener, readonly string[]>();
  private readonly stateListeners = new Set<() => void>();
  private readonly pending = new Map<string, Pending>();
  /** The last retained message of each topic (state, info, decisions, alerts): replayed to listeners added later. */
  private readonly retained = new Map<string, TopicMessage>();
  private subscribed = false;
  private nodeWaiters: ((nodeId: string) => void)[] = [];

  constructor(readonly options: ConnectionOptions) {
    checkOptions(options);
    this.nodeId = options.nodeId || undefined;
    this.client = mqtt.connect({
      host: options.host,
      port: options.port,
      protocol: 'mqtt',
      clientId: `${options.clientName}-${randomBytes(4).toString('hex')}`,
      ...(options.username ? { username: options.username, password: options.password ?? '' } : {}),
      reconnectPeriod: 2_000,
      connectTimeout: 10_000,
      clean: true,
    });
    this.client.on('connect', () => {
      this.lastError = undefined;
      this.setState('connected');
      // A configured node id: its namespace alone; otherwise every node's info, to find one.
      if (this.nodeId) this.subscribeNode(this.nodeId);
      else this.client.subscribe(`${options.prefix}/+/info`, { qos: 1 });
    });
    this.client.on('reconnect', () => this.setState('connecting'));
    this.client.on('close', () => { if (this.state !== 'closed') this.setState('disconnected'); });
    this.client.on('error', (err) => { this.lastError = err.message; });
    this.client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.retain));
  }

  /** Calls `listener` whenever the connection or the node's own state changes; returns the way to stop. */
  onStateChange(listener: () => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * Routes the node's messages matching `filter` (relative: `readings/+`) to
   * `listener`, the retained ones already seen first. Returns the way to stop.
   */
  subscribe(filter: string, listener: TopicListener): () => void {
    const parts = filter.split('/');
    this.listeners.set(listener, parts);
    for (const message of this.retained.values()) if (filterMatches(parts, message.path)) listener(message);
    return () => this.listeners.delete(listener);
  }

  /** The node id, once known (configured, or from the first retained info). */
  async waitForNode(timeoutMs: number): Promise<string> {
    if (this.nodeId && this.subscribed) return this.nodeId;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.nodeWaiters = this.nodeWaiters.filter((w) => w !== waiter);
        reject(this.unreachable(`no Apiary node answered within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const waiter = (nodeId: string) => { clearTimeout(timer); resolve(nodeId); };
      this.nodeWaiters.push(waiter);
    });
  }

  /** Runs one command of the node's registry; rejects with the reply's code, or on timeout. */
  async request(name: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    if (!COMMAND_NAME.test(name)) {
      throw new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, `command: "${name}" is not lower-case words separated by "/"; set the node's command (like status or shared/get) or msg.command`);
    }
    const started = Date.now();
    const nodeId = await this.waitForNode(timeoutMs);
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    const requestId = randomBytes(12).toString('base64url');
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(this.unreachable(`node ${nodeId} did not answer "${name}" within ${timeoutMs / 1000} s`));
      }, left);
      this.pending.set(requestId, { name, resolve, reject, timer });
      const body = JSON.stringify({ requestId, ...(args ? { args } : {}) });
      this.client.publish(`${this.options.prefix}/${nodeId}/cmd/${name}`, body, { qos: 1 }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(requestId);
        reject(this.unreachable(`could not send "${name}": ${err.message}`));
      });
    });
  }

  /** What the editor's pickers show (the admin endpoint). */
  describe(): Record<string, unknown> {
    return {
      state: this.state,
      nodeState: this.nodeState,
      nodeId: this.nodeId,
      name: this.info?.name,
      models: this.info?.models.map((m) => m.name) ?? [],
      rules: this.info?.rules.map((r) => r.id) ?? [],
      channels: [...this.channels].sort(),
      othersSeen: [...this.othersSeen].sort(),
      lastError: this.lastError,
    };
  }

  /** Ends the MQTT connection; pending commands fail. */
  async close(): Promise<void> {
    this.setState('closed');
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ApiaryFlowError(ErrorCodes.NODE_NOT_RUNNING, `"${p.name}" was not answered before the flow stopped`));
      this.pending.delete(id);
    }
    this.listeners.clear();
    this.stateListeners.clear();
    await this.client.endAsync(true);
  }

  private unreachable(why: string): ApiaryFlowError {
    const where = `${this.options.host}:${this.options.port}`;
    const state = this.state === 'connected' ? '' : ` (the broker at ${where} is ${this.state}${this.lastError ? `: ${this.lastError}` : ''})`;
    return new ApiaryFlowError(ErrorCodes.NODE_NOT_RUNNING, `${why}${state}; check that the node runs (\`apiary status\`) and the apiary-node's host, port and node id`);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state || this.state === 'closed') return;
    this.state = state;
    for (const listener of this.stateListeners) listener();
  }

  private subscribeNode(nodeId: string): void {
    this.client.subscribe(`${this.options.prefix}/${nodeId}/#`, { qos: 1 }, (err) => {
      if (err) { this.lastError = err.message; return; }
      this.subscribed = true;
      const waiters = this.nodeWaiters;
      this.nodeWaiters = [];
      for (const waiter of waiters) waiter(nodeId);
    });
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const { prefix } = this.options;
    if (!topic.startsWith(`${prefix}/`)) return;
    const [origin = '', ...path] = topic.slice(prefix.length + 1).split('/');
    if (!this.nodeId && path.length === 1 && path[0] === 'info' && NODE_ID.test(origin)) {
      this.nodeId = origin;
      this.subscribeNode(origin);
    }
    if (origin !== this.nodeId) {
      if (path.length === 1 && path[0] === 'info') this.othersSeen.add(origin);
      return;
    }
    const [kind, rest] = path;
    if (kind === 'reply' && rest !== undefined && path.length === 2) return this.onReply(rest, payload);
    if (kind === 'cmd') return;
    if (kind === 'info') this.info = parseInfo(origin, payload) ?? this.info;
    if (kind === 'readings' && rest !== undefined) this.channels.add(path.slice(1).join('/'));
    if (kind === 'state') {
      this.nodeState = payload.toString('utf8');
      for (const listener of this.stateListeners) listener();
    }
    const message: TopicMessage = { topic, origin, path, payload, retained };
    // Retained topics: the latest of each is kept (an empty payload clears it, as in MQTT).
    if (retained || this.retained.has(topic)) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, { ...message, retained: true });
    }
    for (const [listener, filter] of this.listeners) if (filterMatches(filter, path)) listener(message);
  }

  private onReply(requestId: string, payload: Buffer): void {
    const pending = this.pending.get(requestId);
    if (!pending) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    let reply: unknown;
    try {
      reply = JSON.parse(payload.toString('utf8'));
    } catch {
      pending.reject(new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, `"${pending.name}": the node's reply is not JSON`));
      return;
    }
    const r = reply as { ok?: unknown; result?: unknown; code?: unknown; error?: unknown };
    if (r.ok === true) pending.resolve(r.result);
    else pending.reject(new ApiaryFlowError(typeof r.code === 'string' ? r.code : ErrorCodes.COMMAND_INVALID, `${pending.name}: ${typeof r.error === 'string' ? r.error : 'refused'}`));
  }
}

/** The retained info, checked field by field (untrusted: anything may publish on a broker). */
function parseInfo(origin: string, payload: Buffer): ApiaryInfo | undefined {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const o = json as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const objects = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : []);
  return {
    nodeId: origin,
    name: str(o.name),
    version: str(o.version),
    device: str(o.device),
    models: objects(o.models).flatMap((m) => (typeof m.name === 'string' ? [{ name: m.name, version: str(m.version) }] : [])),
    rules: objects(o.rules).flatMap((r) => (typeof r.id === 'string' ? [{ id: r.id, input: str(r.input), severity: str(r.severity), message: str(r.message) }] : [])),
  };
}
