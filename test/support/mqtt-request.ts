/**
 * A node command over MQTT as any client sends it: publish on
 * `<prefix>/<id>/cmd/<name>` with a request id, wait for the answer on
 * `<prefix>/<id>/reply/<id>` (the client must be subscribed to the node's reply topics).
 */
import type { MqttClient } from 'mqtt';

export interface CommandReply { ok: boolean; result?: unknown; code?: string; error?: string }

export function commandRequester(client: MqttClient, nodeId: () => string, options: { prefix?: string; idPrefix?: string } = {}) {
  const prefix = options.prefix ?? 'apiary';
  let next = 0;
  return async (name: string, args?: unknown, timeoutMs = 15_000): Promise<CommandReply> => {
    const requestId = `${options.idPrefix ?? 'req'}-${++next}`;
    const replyTopic = `${prefix}/${nodeId()}/reply/${requestId}`;
    const answer = new Promise<CommandReply>((resolve, reject) => {
      const timer = setTimeout(() => { client.off('message', onMessage); reject(new Error(`no reply to ${name} within ${timeoutMs} ms`)); }, timeoutMs);
      const onMessage = (topic: string, payload: Buffer) => {
        if (topic !== replyTopic) return;
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(JSON.parse(payload.toString()) as CommandReply);
      };
      client.on('message', onMessage);
    });
    await client.publishAsync(`${prefix}/${nodeId()}/cmd/${name}`, JSON.stringify({ requestId, ...(args !== undefined ? { args } : {}) }), { qos: 1 });
    return answer;
  };
}
