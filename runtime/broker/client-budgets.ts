/**
 * What one client can make the broker hold after it has connected (issue 10,
 * finding 3, the broker's part), each bound counted when it refuses:
 * - QoS 2 messages received and awaiting PUBREL (MQTT 3.1.1 §4.3.3): aedes
 *   keeps each one, payload included, until the PUBREL; a client that never
 *   sends it could hold up to 65535 of them per session, a refused one
 *   included. Here only the packet id is kept (the message was already routed
 *   at PUBREC; the id is all that exactly-once needs), and at most
 *   `maxInflightQos2` per client id: one more closes the connection, as MQTT 5
 *   does past its Receive Maximum (`broker.rejected.inflight-qos2`).
 * - retained messages: at most `perClient` messages and bytes per client
 *   (a peer by node id, a local client by client id) and `total` over all
 *   clients; a retained PUBLISH past either is refused like any refused
 *   PUBLISH (`broker.rejected.retained-client` / `-total`). The node's own
 *   retained messages (published in-process) are not charged.
 */
import type { Client } from 'aedes';
import type { Counters } from '../counters.js';

export interface RetainedLimits {
  perClientMessages: number;
  perClientBytes: number;
  totalMessages: number;
  totalBytes: number;
}

/** Defaults: far above what a node's own tools (Home Assistant, a bridge of some devices) retain, far below a board's memory. */
export const CLIENT_BUDGET_DEFAULTS = {
  maxInflightQos2: 100,
  retained: { perClientMessages: 1000, perClientBytes: 4 * 1024 * 1024, totalMessages: 10_000, totalBytes: 16 * 1024 * 1024 } satisfies RetainedLimits,
};

/** The suffixes of the `broker.rejected.*` counters for a retained PUBLISH over budget. */
export type RetainedRefusal = 'retained-client' | 'retained-total';

interface Holding {
  messages: number;
  bytes: number;
}

/** Who holds which retained topic, and how much each client holds. */
export class RetainedBudget {
  private readonly topics = new Map<string, { owner: string; bytes: number }>();
  private readonly owners = new Map<string, Holding>();
  private readonly total: Holding = { messages: 0, bytes: 0 };

  constructor(private readonly limits: RetainedLimits) {
    checkWholeNumbers(limits);
  }

  /** A retained PUBLISH of `bytes` (payload and topic) to `topic` from client `owner`: may it be stored? (Clearing always may.) */
  admit(owner: string, topic: string, bytes: number): RetainedRefusal | undefined {
    if (bytes === 0) return undefined;
    const previous = this.topics.get(topic);
    const held = this.owners.get(owner) ?? { messages: 0, bytes: 0 };
    const mine = previous?.owner === owner ? previous : undefined;
    const { perClientMessages, perClientBytes, totalMessages, totalBytes } = this.limits;
    if (held.messages + (mine ? 0 : 1) > perClientMessages || held.bytes - (mine?.bytes ?? 0) + bytes > perClientBytes) return 'retained-client';
    if (this.total.messages + (previous ? 0 : 1) > totalMessages || this.total.bytes - (previous?.bytes ?? 0) + bytes > totalBytes) return 'retained-total';
    return undefined;
  }

  /** A retained message was stored (bytes > 0) or cleared (bytes 0) on `topic`; owner undefined = the node itself, not charged. */
  stored(owner: string | undefined, topic: string, bytes: number): void {
    const previous = this.topics.get(topic);
    if (previous) {
      this.topics.delete(topic);
      this.add(previous.owner, -1, -previous.bytes);
    }
    if (owner === undefined || bytes === 0) return;
    this.topics.set(topic, { owner, bytes });
    this.add(owner, 1, bytes);
  }

  /** What a client holds now (tests, status). */
  heldBy(owner: string): Holding {
    return { ...(this.owners.get(owner) ?? { messages: 0, bytes: 0 }) };
  }

  private add(owner: string, messages: number, bytes: number): void {
    const held = this.owners.get(owner) ?? { messages: 0, bytes: 0 };
    held.messages += messages;
    held.bytes += bytes;
    if (held.messages > 0) this.owners.set(owner, held);
    else this.owners.delete(owner);
    this.total.messages += messages;
    this.total.bytes += bytes;
  }
}

/** The part of aedes's persistence (untyped in aedes's definitions) that keeps received QoS 2 messages until PUBREL. */
export interface IncomingStore {
  incomingStorePacket(client: Client, packet: { messageId?: number; [key: string]: unknown }): Promise<void>;
  incomingDelPacket(client: Client, packet: { messageId?: number }): Promise<void>;
  cleanIncoming?(client: Client): Promise<void>;
}

/**
 * Wraps the persistence in place: a received QoS 2 message is stored as its
 * packet id alone, and at most `maxInflight` per client id (a persistent
 * session keeps them across connections, so the bound is per id, not per
 * socket). Past the bound the store fails, and aedes closes the connection.
 */
export function boundIncomingQos2(store: IncomingStore, maxInflight: number, counters: Counters): void {
  checkWholeNumbers({ maxInflightQos2: maxInflight });
  const held = new Map<string, Set<number>>();
  const storePacket = store.incomingStorePacket.bind(store);
  const delPacket = store.incomingDelPacket.bind(store);
  const clean = store.cleanIncoming?.bind(store);
  store.incomingStorePacket = async (client, packet) => {
    const id = packet.messageId ?? 0;
    const ids = held.get(client.id) ?? new Set<number>();
    if (maxInflight > 0 && !ids.has(id) && ids.size >= maxInflight) {
      counters.increment('broker.rejected.inflight-qos2');
      throw new Error(`more than ${maxInflight} QoS 2 messages awaiting PUBREL (broker.maxInflightQos2)`);
    }
    // What §4.3.3 needs to answer a resent PUBLISH and its PUBREL: the packet id (topic and payload were already routed).
    await storePacket(client, { cmd: 'publish', qos: 2, messageId: id, topic: '', payload: Buffer.alloc(0), retain: false, dup: false });
    ids.add(id);
    held.set(client.id, ids);
  };
  store.incomingDelPacket = async (client, packet) => {
    await delPacket(client, packet);
    const ids = held.get(client.id);
    ids?.delete(packet.messageId ?? 0);
    if (ids?.size === 0) held.delete(client.id);
  };
  if (clean) {
    store.cleanIncoming = async (client) => {
      await clean(client);
      held.delete(client.id);
    };
  }
}

function checkWholeNumbers(values: object): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw new RangeError(`EmbeddedBroker ${name} must be a whole number ≥ 0, got ${String(value)}`);
  }
}
