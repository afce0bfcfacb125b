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
 * - messages queued for a persistent session while its client is away: per
 *   client id and in total (`broker.dropped.offline_queue_full`);
 * - topic filters per connection (`broker.rejected.subscriptions-client`,
 *   SUBACK 0x80 for the filter).
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
  maxSubscriptionsPerClient: 1000,
  maxOfflineQueuedBytes: 32 * 1024 * 1024,
  retained: { perClientMessages: 1000, perClientBytes: 4 * 1024 * 1024, totalMessages: 10_000, totalBytes: 16 * 1024 * 1024 } satisfies RetainedLimits,
};

/** The suffixes of the `broker.rejected.*` counters for a retained PUBLISH over budget. */
export type RetainedRefusal = 'retained-client' | 'retained-total';
/** The suffix of the `broker.rejected.*` counter for a filter over the subscription budget. */
export type SubscriptionRefusal = 'subscriptions-client';

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

/**
 * Topic filters one connection may hold (each costs a matcher entry in
 * aedes's mqemitter and, for a persistent session, in its persistence). One
 * SUBSCRIBE of a maximum-size packet could otherwise carry thousands.
 */
export class SubscriptionBudget {
  private readonly filters = new WeakMap<Client, Set<string>>();

  constructor(private readonly maxPerClient: number) {
    checkWholeNumbers({ maxSubscriptionsPerClient: maxPerClient });
  }

  /** May `client` hold `filter` (again, or one more)? Remembers it if so. Restored session filters pass through here too. */
  admit(client: Client, filter: string): boolean {
    const held = this.filters.get(client) ?? new Set<string>();
    if (this.maxPerClient > 0 && !held.has(filter) && held.size >= this.maxPerClient) return false;
    held.add(filter);
    this.filters.set(client, held);
    return true;
  }

  removed(client: Client, filters: readonly string[]): void {
    const held = this.filters.get(client);
    for (const filter of filters) held?.delete(filter);
  }
}

/** How much may wait in the persistent sessions of clients that are away. */
export interface OfflineQueueLimits {
  /** Messages queued for one client id (broker.maxQueuedMessages, as mosquitto's max_queued_messages also counts offline ones). 0 = no limit. */
  perClientMessages: number;
  /** Payload bytes queued for one client id (broker.maxQueuedBytes). 0 = no limit. */
  perClientBytes: number;
  /** Payload bytes queued for all client ids together. 0 = no limit. */
  totalBytes: number;
}

interface QueuedPacket {
  payload?: Buffer | string | Uint8Array;
}
/** The part of aedes's persistence that queues QoS 1/2 messages for persistent sessions (untyped in aedes's definitions). */
export interface OutgoingQueueStore {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<QueuedPacket | undefined>;
}

/**
 * Wraps the persistence in place so that a persistent session whose client
 * is away (clean session 0, QoS 1/2 subscriptions, MQTT 3.1.1 §3.1.2.4)
 * cannot queue without bound: a message for a client id over its bound, or
 * over the total, is not queued for it (`broker.dropped.offline_queue_full`).
 * The queue of a connected client is already bounded by its outbox, so
 * messages for it are counted but never refused here (refusing would close
 * it: aedes sends a persistent session's messages from this queue).
 */
export function boundOfflineQueues(store: OutgoingQueueStore, limits: OfflineQueueLimits, counters: Counters, isConnected: (clientId: string) => boolean): void {
  checkWholeNumbers(limits);
  const queued = new Map<string, Holding>();
  let totalBytes = 0;
  const size = (packet: QueuedPacket): number => (packet.payload === undefined ? 0 : typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length);
  const add = (clientId: string, messages: number, bytes: number): void => {
    const held = queued.get(clientId) ?? { messages: 0, bytes: 0 };
    held.messages += messages;
    held.bytes += bytes;
    totalBytes += bytes;
    if (held.messages > 0) queued.set(clientId, held);
    else queued.delete(clientId);
  };
  const fits = (clientId: string, bytes: number): boolean => {
    const held = queued.get(clientId) ?? { messages: 0, bytes: 0 };
    const { perClientMessages, perClientBytes, totalBytes: maxTotal } = limits;
    return (perClientMessages === 0 || held.messages < perClientMessages) && (perClientBytes === 0 || held.bytes + bytes <= perClientBytes) && (maxTotal === 0 || totalBytes + bytes <= maxTotal);
  };
  const enqueue = store.outgoingEnqueue.bind(store);
  const enqueueCombi = store.outgoingEnqueueCombi.bind(store);
  const clear = store.outgoingClearMessageId.bind(store);
  // Room is taken before the store's await, so messages routed at the same time cannot all pass the check.
  store.outgoingEnqueue = async (sub, packet) => {
    const bytes = size(packet);
    add(sub.clientId, 1, bytes);
    await enqueue(sub, packet).catch((err: unknown) => {
      add(sub.clientId, -1, -bytes);
      throw err;
    });
  };
  store.outgoingEnqueueCombi = async (subs, packet) => {
    const bytes = size(packet);
    const admitted = subs.filter((sub) => {
      // aedes queues here for connected persistent sessions too (then sends from the queue): their outbox bounds them.
      if (!isConnected(sub.clientId) && !fits(sub.clientId, bytes)) return false;
      add(sub.clientId, 1, bytes);
      return true;
    });
    if (admitted.length < subs.length) counters.increment('broker.dropped.offline_queue_full', subs.length - admitted.length);
    await enqueueCombi(admitted, packet).catch((err: unknown) => {
      for (const sub of admitted) add(sub.clientId, -1, -bytes);
      throw err;
    });
  };
  store.outgoingClearMessageId = async (client, packet) => {
    const cleared = await clear(client, packet);
    if (cleared) add(client.id, -1, -size(cleared));
    return cleared;
  };
}

/** Limits are whole numbers ≥ 0 (0 = no limit): a RangeError names the first that is not. */
export function checkWholeNumbers(values: object): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw new RangeError(`EmbeddedBroker ${name} must be a whole number ≥ 0, got ${String(value)}`);
  }
}
