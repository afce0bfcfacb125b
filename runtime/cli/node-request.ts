/**
 * Asks a running node something over MQTT: publishes to its command topic
 * with a fresh request id and waits for the answer on its reply topic.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { nodeTopics } from '../bus/topics.js';

export interface NodeRequestOptions {
  url: string;
  topicPrefix: string;
  /** The node to ask; omitted = the first node that announces itself on the broker. */
  nodeId?: string;
  command: string;
  args?: Record<string, unknown>;
  timeoutMs?: number;
  /** The request's `auth` envelope for the node that answers (an owner signature: runtime/commands/command-auth.ts). */
  auth?: (nodeId: string) => unknown;
}

export interface NodeReply {
  nodeId: string;
  ok: boolean;
  result?: unknown;
  error?: string;
  code?: string;
}

export async function requestNode(options: NodeRequestOptions): Promise<NodeReply> {
  const { connectAsync } = await import('mqtt');
  const timeoutMs = options.timeoutMs ?? 5_000;
  const notRunning = (why: string) => new ApiaryError(ErrorCodes.NODE_NOT_RUNNING, `no answer from an Apiary node at ${options.url}: ${why}`, {
    hint: 'start the node with `apiary start` (or `npm start`); if it runs, pass this command the --config / --data-dir / --port it was started with',
  });
  let client;
  try {
    // allowRetries false: a connection closed before its CONNACK (a node killed while it accepts) rejects; with retries
    // allowed and reconnectPeriod 0, MQTT.js's connectAsync would wait for a connect or end that never comes.
    client = await connectAsync(options.url, { reconnectPeriod: 0, connectTimeout: timeoutMs, clientId: `apiary-cli-${randomUUID().slice(0, 8)}` }, false);
  } catch (err) {
    throw notRunning(err instanceof Error ? err.message : String(err));
  }
  try {
    const nodeId = options.nodeId ?? (await discoverNode(client, options.topicPrefix, timeoutMs));
    if (!nodeId) throw notRunning('no node announced itself on the broker');
    const topics = nodeTopics(options.topicPrefix, nodeId);
    const requestId = randomUUID();
    const replyTopic = topics.reply(requestId);
    const answer = new Promise<NodeReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(notRunning(`node ${nodeId} did not answer "${options.command}" within ${timeoutMs / 1000} s`)), timeoutMs);
      client.on('message', (topic, payload) => {
        if (topic !== replyTopic) return;
        clearTimeout(timer);
        try {
          resolve({ nodeId, ...(JSON.parse(payload.toString('utf8')) as Omit<NodeReply, 'nodeId'>) });
        } catch {
          reject(new ApiaryError(ErrorCodes.COMMAND_INVALID, `node ${nodeId} sent a reply that is not JSON`));
        }
      });
    });
    const asked = (async () => {
      await client.subscribeAsync(replyTopic, { qos: 1 });
      await client.publishAsync(topics.command(options.command), JSON.stringify({ requestId, ...(options.args ? { args: options.args } : {}), ...(options.auth ? { auth: options.auth(nodeId) } : {}) }), { qos: 1 });
      return answer;
    })();
    // The timeout bounds the whole request: a broker that goes away mid-subscribe (the node was killed) never acknowledges it.
    return await Promise.race([asked, answer]);
  } finally {
    await client.endAsync(true);
  }
}

/** Finds a node by its retained info message. */
async function discoverNode(client: MqttClient, prefix: string, timeoutMs: number): Promise<string | undefined> {
  const found = new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    client.on('message', (topic) => {
      const match = new RegExp(`^${prefix}/([a-z2-7]{12})/info$`).exec(topic);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
  });
  await client.subscribeAsync(`${prefix}/+/info`, { qos: 1 });
  return found;
}
