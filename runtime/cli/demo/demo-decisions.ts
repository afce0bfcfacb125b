/**
 * The demo's decision lines: each node's decisions, read from its broker as any
 * MQTT client would (`<prefix>/<nodeId>/decisions/<rule>`), printed as one
 * readable line with the hive's name instead of the node's JSON log line.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';

export interface DecisionSource {
  name: string;
  url: string;
  /** The node's decision topic filter, e.g. apiary/<nodeId>/decisions/+ */
  topic: string;
}

interface DecisionMessage {
  state?: string;
  severity?: string;
  message?: string;
  reason?: string;
}

/** `14:02:11  hive-2  decision  critical  raised: The colony sounds like it is swarming, because <reason>` */
export function formatDecision(name: string, record: DecisionMessage, at = new Date()): string {
  const time = at.toTimeString().slice(0, 8);
  return `${time}  ${name}  decision  ${(record.severity ?? '?').padEnd(8)}  ${record.state ?? '?'}: ${record.message ?? ''}${record.reason ? `, because ${record.reason}` : ''}`;
}

/** Prints every new decision of every node; resolves to a function that stops watching. */
export async function watchDecisions(sources: DecisionSource[], print: (line: string) => void): Promise<() => Promise<void>> {
  const { connectAsync } = await import('mqtt');
  const clients: MqttClient[] = [];
  for (const source of sources) {
    const client = await connectAsync(source.url, { clientId: `apiary-demo-${randomUUID().slice(0, 8)}`, reconnectPeriod: 1000 });
    clients.push(client);
    client.on('message', (_topic, payload, packet) => {
      if (packet.retain) return; // the state before the demo started (a kept --data-dir), not news
      try {
        print(formatDecision(source.name, JSON.parse(payload.toString('utf8')) as DecisionMessage));
      } catch {
        // not a decision record: nothing to show
      }
    });
    await client.subscribeAsync(source.topic, { qos: 1 });
  }
  return async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
  };
}
