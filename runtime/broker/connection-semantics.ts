/**
 * Session rules of MQTT 3.1.1 that aedes 1.2 gets wrong, applied on the wire
 * (the guard hands every packet here, both ways; see mqtt-guard.ts):
 *
 * - CONNACK Session Present is 1 when a client resumes a session (clean
 *   session 0) that exists, also one without subscriptions [MQTT-3.2.2-2];
 *   aedes keeps nothing for such a session and answers 0.
 * - A QoS 1/2 PUBLISH re-sent when a session resumes carries DUP 1
 *   [MQTT-3.3.1-1] (§4.4); aedes re-sends it with DUP 0. Any other PUBLISH
 *   goes out with DUP 0: the publisher's DUP is not passed on [MQTT-3.3.1-3].
 * - An acknowledgement of the wrong kind for a message in flight (PUBREC or
 *   PUBCOMP for QoS 1, PUBACK for QoS 2, PUBCOMP before PUBREC) is a protocol
 *   violation: the connection is closed (§4.8), as mosquitto does; aedes took
 *   them as if they were right. An acknowledgement for a packet id not in
 *   flight is let through, as mosquitto does (aedes ignores it, or answers a
 *   PUBREC with PUBREL).
 * - MQTT 3.1 clients get their packets rewritten to 3.1.1 form (mqtt31.ts).
 *
 * What a persistent session needs across connections (that it exists, and
 * which packet ids were in flight) lives in a SessionRegistry, bounded.
 */
import type { GuardRejection, WireSemantics } from './mqtt-guard.js';
import { asMqtt311, fixedHeaderLength } from './mqtt31.js';

const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6, PUBCOMP = 7;

/** A QoS 1/2 PUBLISH the client has not finished acknowledging: stage 'publish' until PUBREC (QoS 2) or PUBACK, then 'pubrel' until PUBCOMP. */
interface InFlight {
  qos: 1 | 2;
  stage: 'publish' | 'pubrel';
}

/** Packet id → what is in flight with it (aedes may reuse an id: the newest PUBLISH with it wins). */
type InFlightMessages = Map<number, InFlight>;

/** Default bound on the persistent sessions remembered (the least recently connected is forgotten first). */
export const DEFAULT_MAX_REMEMBERED_SESSIONS = 10_000;

/**
 * The persistent sessions (clean session 0) the broker has seen, by client
 * id. At most `maxSessions`; beyond it the least recently connected one is
 * forgotten (`onForget`): it then resumes with Session Present from aedes
 * alone and its re-sent messages without DUP, nothing worse.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, InFlightMessages>();

  constructor(private readonly maxSessions = DEFAULT_MAX_REMEMBERED_SESSIONS, private readonly onForget: () => void = () => undefined) {
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) throw new RangeError(`SessionRegistry maxSessions must be a whole number ≥ 1, got ${String(maxSessions)}`);
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * A CONNECT was accepted (CONNACK 0). A clean session ends any session of
   * that id [MQTT-3.1.2-6] and gets messages of its own; a persistent one
   * resumes or starts the id's session. Returns whether a session was present.
   */
  open(clientId: string, clean: boolean): { inFlight: InFlightMessages; present: boolean } {
    const existing = this.sessions.get(clientId);
    this.sessions.delete(clientId);
    if (clean) return { inFlight: new Map(), present: false };
    const inFlight = existing ?? new Map<number, InFlight>();
    this.sessions.set(clientId, inFlight); // re-inserted: the Map's order is the order of the last connect
    if (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
      this.onForget();
    }
    return { inFlight, present: existing !== undefined };
  }

  /** The semantics of one new connection. */
  connection(): ConnectionSemantics {
    return new ConnectionSemantics(this);
  }
}

/** One connection's view: what its CONNECT asked for, and its messages in flight. */
export class ConnectionSemantics implements WireSemantics {
  private connect: { clientId: string; clean: boolean } | undefined;
  private inFlight: InFlightMessages = new Map();
  /** Ids of PUBLISH packets in flight when this connection resumed its session: their next PUBLISH is a re-delivery. */
  private readonly resent = new Set<number>();

  constructor(private readonly sessions: SessionRegistry) {}

  inbound(packet: Buffer, version: number): Buffer | GuardRejection {
    if (version === 3) packet = asMqtt311(packet);
    const type = (packet[0] as number) >> 4;
    if (type === CONNECT) this.connect = readConnect(packet);
    else if (type === PUBACK || type === PUBREC || type === PUBCOMP) {
      const problem = this.acknowledged(type, packet.readUInt16BE(2));
      if (problem) return { reason: 'wrong-ack', detail: problem };
    }
    return packet;
  }

  outbound(packet: Buffer): Buffer {
    const type = (packet[0] as number) >> 4;
    if (type === CONNACK) return this.connack(packet);
    if (type === PUBREL) {
      const id = packet.readUInt16BE(2);
      this.inFlight.set(id, { qos: 2, stage: 'pubrel' });
      this.resent.delete(id);
      return packet;
    }
    if (type !== PUBLISH) return packet;
    const first = packet[0] as number;
    const qos = (first >> 1) & 0x03;
    let dup = false;
    if (qos === 1 || qos === 2) {
      const id = publishPacketId(packet);
      dup = this.resent.delete(id);
      this.inFlight.set(id, { qos, stage: 'publish' });
    }
    const wanted = dup ? first | 0x08 : first & ~0x08;
    if (wanted === first) return packet;
    const copy = Buffer.from(packet); // aedes's buffers may be shared (mqtt-packet caches header bytes)
    copy[0] = wanted;
    return copy;
  }

  /** A message the broker gave up on (the client was cut for not reading): it is no longer in flight, and never re-sent. */
  forget(messageId: number): void {
    this.inFlight.delete(messageId);
    this.resent.delete(messageId);
  }

  /** [MQTT-3.2.2-2]: Session Present once a persistent session resumes; the session's messages in flight come with it. */
  private connack(packet: Buffer): Buffer {
    const connect = this.connect;
    if (!connect || packet.length < 4 || packet[3] !== 0) return packet; // a refused CONNECT changes no session [MQTT-3.2.2-4]
    const { inFlight, present } = this.sessions.open(connect.clientId, connect.clean);
    this.inFlight = inFlight;
    for (const [id, message] of inFlight) if (message.stage === 'publish') this.resent.add(id);
    if (!present || ((packet[2] as number) & 0x01) === 1) return packet;
    const copy = Buffer.from(packet);
    copy[2] = 0x01;
    return copy;
  }

  /** Checks an acknowledgement against the message in flight with its id (§4.3.2, §4.3.3); returns the rule broken, if any. */
  private acknowledged(type: number, id: number): string | undefined {
    const message = this.inFlight.get(id);
    if (!message) return undefined; // not in flight: ignored downstream, as mosquitto does
    if (type === PUBACK) {
      if (message.qos === 2) return `PUBACK for QoS 2 message ${id}`;
      this.inFlight.delete(id);
    } else if (message.qos === 1) {
      return `${type === PUBREC ? 'PUBREC' : 'PUBCOMP'} for QoS 1 message ${id}`;
    } else if (type === PUBCOMP) {
      if (message.stage === 'publish') return `PUBCOMP before PUBREC for message ${id}`;
      this.inFlight.delete(id);
    }
    return undefined;
  }
}

/** Client id and clean session flag of a CONNECT the guard checked (§3.1.2, §3.1.3). */
function readConnect(packet: Buffer): { clientId: string; clean: boolean } {
  let at = fixedHeaderLength(packet);
  at += 2 + packet.readUInt16BE(at) + 1; // protocol name, level
  const flags = packet[at] as number;
  at += 1 + 2; // flags, keep alive
  const length = packet.readUInt16BE(at);
  return { clientId: packet.toString('utf8', at + 2, at + 2 + length), clean: (flags & 0x02) !== 0 };
}

/** The packet id of a QoS 1/2 PUBLISH: after the fixed header and the topic (§3.3.2). */
function publishPacketId(packet: Buffer): number {
  const topicAt = fixedHeaderLength(packet);
  return packet.readUInt16BE(topicAt + 2 + packet.readUInt16BE(topicAt));
}
