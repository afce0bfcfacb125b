/**
 * A thin MQTT 3.1.1 wire guard in front of aedes. aedes 1.2 (through
 * mqtt-packet) buffers a packet of any declared size, decodes invalid UTF-8
 * into U+FFFD instead of refusing it, and reports every violation as one
 * anonymous client error. This layer frames each packet itself, refuses an
 * oversized one as soon as its fixed header is read (before buffering the
 * body), checks the rules mosquitto enforces, and names the reason, so every
 * refusal is counted. Only whole, checked packets reach aedes. On the way
 * out, aedes's writes go through an outbox (outbox.ts) that bounds what
 * waits for a client that does not read.
 * Section numbers are MQTT 3.1.1 (OASIS standard, 2014).
 */
import { isUtf8 } from 'node:buffer';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { Outbox, type DropReason, type DroppedPublish, type OutboxLimits, type OutboxStats } from './outbox.js';

export type GuardReason =
  | 'malformed' | 'oversized' | 'not-connect-first' | 'second-connect' | 'reserved-flags'
  | 'bad-qos' | 'invalid-utf8' | 'invalid-topic' | 'protocol-version' | 'connect-oversized' | 'wrong-ack';

export interface GuardRejection {
  reason: GuardReason;
  detail: string;
  /** A CONNACK return code to send before closing, where the spec asks for one. */
  connack?: number;
}

const CONNECT = 1, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6, PUBCOMP = 7;
const SUBSCRIBE = 8, UNSUBSCRIBE = 10, PINGREQ = 12, DISCONNECT = 14;
/** Packet types a client may send (§2.2.1); 0 and 15 are reserved, the rest flow server → client. */
const FROM_CLIENT = new Set([CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT]);
/**
 * The deepest topic (levels) accepted by default. The spec sets no limit
 * (§4.7); mosquitto allows 200. A bound keeps matching cost in check; aedes's
 * matchers allow up to 1000 (patches/aedes-1.2.0.patch).
 */
export const DEFAULT_MAX_TOPIC_LEVELS = 200;

const reject = (reason: GuardReason, detail: string, connack?: number): GuardRejection => (connack === undefined ? { reason, detail } : { reason, detail, connack });

/**
 * A UTF-8 string as MQTT allows it: well-formed, no surrogates [MQTT-1.5.3-1],
 * no U+0000 [MQTT-1.5.3-2]. §1.5.3 lets a server also close on C0/C1 controls
 * and non-characters; mosquitto does, so we do.
 */
export function mqttString(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8');
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return undefined;
  }
  return text;
}

/** A topic name: not empty [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2] [MQTT-4.7.1-1]. */
export function topicNameProblem(topic: string, maxLevels = DEFAULT_MAX_TOPIC_LEVELS): string | undefined {
  if (topic.length === 0) return 'empty topic';
  if (topic.includes('+') || topic.includes('#')) return 'wildcard in a topic name';
  if (topic.split('/').length > maxLevels) return 'too many topic levels';
  return undefined;
}

/** A topic filter: not empty [MQTT-4.7.3-1]; '#' alone and last [MQTT-4.7.1-2]; '+' a whole level [MQTT-4.7.1-3]. */
export function topicFilterProblem(filter: string, maxLevels = DEFAULT_MAX_TOPIC_LEVELS): string | undefined {
  if (filter.length === 0) return 'empty topic filter';
  const levels = filter.split('/');
  if (levels.length > maxLevels) return 'too many topic levels';
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return "'#' not alone in the last level";
    if (level.includes('+') && level !== '+') return "'+' not alone in its level";
  }
  return undefined;
}

/** Reads 2-byte-length-prefixed fields (§1.5.3) without ever reading past the packet. */
class FieldReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  get left(): number {
    return this.buf.length - this.pos;
  }
  u8(): number | undefined {
    return this.pos + 1 <= this.buf.length ? this.buf[this.pos++] : undefined;
  }
  u16(): number | undefined {
    if (this.pos + 2 > this.buf.length) return undefined;
    const value = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }
  field(): Buffer | undefined {
    const length = this.u16();
    if (length === undefined || this.pos + length > this.buf.length) return undefined;
    const bytes = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return bytes;
  }
}

function checkConnect(body: Buffer, maxTopicLevels: number): GuardRejection | undefined {
  const r = new FieldReader(body);
  const name = r.field()?.toString('latin1');
  const level = r.u8();
  const flags = r.u8();
  if (name === undefined || level === undefined || flags === undefined || r.u16() === undefined) return reject('malformed', 'truncated CONNECT header');
  // [MQTT-3.1.2-1]: a wrong protocol name may be dropped without a CONNACK (mosquitto does).
  if (name !== 'MQTT' && name !== 'MQIsdp') return reject('malformed', `protocol name ${JSON.stringify(name)}`);
  // [MQTT-3.1.2-2]: an unsupported level gets CONNACK 0x01, then the close. aedes speaks 3.1 and 3.1.1 (0x80 = bridge bit).
  const version = level & 0x7f;
  if (!((name === 'MQIsdp' && version === 3) || (name === 'MQTT' && version === 4))) return reject('protocol-version', `${name} level ${level}`, 0x01);
  // 3.1.1-only rules: MQTT 3.1 leaves these bits unused (mosquitto ignores them there too; mqtt31.ts clears them for aedes).
  const v311 = version === 4;
  if (v311 && flags & 0x01) return reject('malformed', 'CONNECT reserved flag set'); // [MQTT-3.1.2-3]
  const will = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  if (v311 && !will && (willQos !== 0 || (flags & 0x20) !== 0)) return reject('malformed', 'will QoS/retain without a will'); // [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]
  if (will && willQos === 3) return reject('malformed', 'will QoS 3'); // [MQTT-3.1.2-14]
  const hasUser = (flags & 0x80) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  if (hasPassword && !hasUser) return reject('malformed', 'password without a user name'); // [MQTT-3.1.2-22]
  const clientId = r.field();
  if (clientId === undefined) return reject('malformed', 'truncated client id');
  if (mqttString(clientId) === undefined) return reject('invalid-utf8', 'client id'); // [MQTT-3.1.3-4]
  if (will) {
    const topic = r.field();
    if (topic === undefined || r.field() === undefined) return reject('malformed', 'truncated will');
    const text = mqttString(topic);
    if (text === undefined) return reject('invalid-utf8', 'will topic'); // [MQTT-3.1.3-10]
    const problem = topicNameProblem(text, maxTopicLevels);
    if (problem) return reject('invalid-topic', `will topic: ${problem}`);
  }
  if (hasUser) {
    const user = r.field();
    if (user === undefined) return reject('malformed', 'truncated user name');
    if (mqttString(user) === undefined) return reject('invalid-utf8', 'user name'); // [MQTT-3.1.3-11]
  }
  if (hasPassword && r.field() === undefined) return reject('malformed', 'truncated password');
  if (r.left !== 0) return reject('malformed', 'bytes after the CONNECT payload');
  return undefined;
}

function checkPublish(flags: number, body: Buffer, version: number, maxTopicLevels: number): GuardRejection | undefined {
  const qos = (flags >> 1) & 0x03;
  if (version === 4 && qos === 0 && flags & 0x08) return reject('malformed', 'DUP set on QoS 0'); // [MQTT-3.3.1-2], 3.1.1 only
  const r = new FieldReader(body);
  const topic = r.field();
  if (topic === undefined) return reject('malformed', 'truncated topic');
  const text = mqttString(topic);
  if (text === undefined) return reject('invalid-utf8', 'PUBLISH topic'); // [MQTT-3.3.2-1]
  const problem = topicNameProblem(text, maxTopicLevels);
  if (problem) return reject('invalid-topic', problem);
  if (qos > 0 && !r.u16()) return reject('malformed', 'missing or zero packet id'); // [MQTT-2.3.1-1]
  return undefined;
}

function checkFilters(type: number, body: Buffer, maxTopicLevels: number): GuardRejection | undefined {
  const r = new FieldReader(body);
  if (!r.u16()) return reject('malformed', 'missing or zero packet id'); // [MQTT-2.3.1-1]
  if (r.left === 0) return reject('malformed', 'no topic filter'); // [MQTT-3.8.3-3] [MQTT-3.10.3-2]
  while (r.left > 0) {
    const filter = r.field();
    if (filter === undefined) return reject('malformed', 'truncated topic filter');
    if (type === SUBSCRIBE) {
      const options = r.u8();
      // [MQTT-3-8.3-4]: upper six bits zero, requested QoS 0–2
      if (options === undefined || (options & 0xfc) !== 0 || (options & 0x03) === 3) return reject('malformed', 'bad requested QoS byte');
    }
    const text = mqttString(filter);
    if (text === undefined) return reject('invalid-utf8', 'topic filter'); // [MQTT-3.8.3-1] [MQTT-3.10.3-1]
    const problem = topicFilterProblem(text, maxTopicLevels);
    if (problem) return reject('invalid-topic', problem);
  }
  return undefined;
}

/** Frames the client → server byte stream into whole packets and checks each. */
export class MqttGuard {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Total size (fixed header included) of the packet being collected, once its header is read. */
  private expected: { type: number; flags: number; total: number; headerLength: number } | undefined;
  private sawConnect = false;
  /** The protocol level of the CONNECT: 4 (3.1.1) until then, 3 for an MQTT 3.1 client. */
  private level = 4;

  /** maxConnectBytes: the CONNECT is refused from its header alone past this (a link token fits in a few KiB): pre-auth memory stays small. */
  constructor(private readonly maxPacketBytes: number, private readonly maxConnectBytes = maxPacketBytes, private readonly maxTopicLevels = DEFAULT_MAX_TOPIC_LEVELS) {}

  /** 3 for an MQTT 3.1 (MQIsdp) client, 4 for 3.1.1. */
  get version(): number {
    return this.level;
  }

  /** Returns the whole packets completed by `chunk`, or the first rule broken. */
  feed(chunk: Buffer): { packets: Buffer[]; rejection?: GuardRejection } {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const packets: Buffer[] = [];
    for (;;) {
      if (!this.expected) {
        const header = this.readHeader();
        if (header === undefined) break;
        if ('reason' in header) return { packets, rejection: header };
        this.expected = header;
      }
      if (this.buffered < this.expected.total) break;
      const { type, flags, total, headerLength } = this.expected;
      this.expected = undefined;
      const packet = this.take(total);
      const rejection = this.checkBody(type, flags, packet.subarray(headerLength));
      if (rejection) return { packets, rejection };
      packets.push(packet);
    }
    return { packets };
  }

  /** Fixed header (§2.2): decides everything it can before the body is buffered. */
  private readHeader(): { type: number; flags: number; total: number; headerLength: number } | GuardRejection | undefined {
    if (this.buffered === 0) return undefined;
    if (this.chunks.length > 1 && (this.chunks[0]?.length ?? 0) < 5) this.chunks = [Buffer.concat(this.chunks)];
    const head = this.chunks[0] as Buffer;
    const first = head[0] as number;
    const type = first >> 4;
    const flags = first & 0x0f;
    if (!FROM_CLIENT.has(type)) return reject('malformed', `packet type ${type} from a client`); // §2.2.1
    if (!this.sawConnect && type !== CONNECT) return reject('not-connect-first', `packet type ${type} before CONNECT`); // [MQTT-3.1.0-1]
    if (this.sawConnect && type === CONNECT) return reject('second-connect', 'second CONNECT'); // [MQTT-3.1.0-2]
    if (type === PUBLISH) {
      if (((flags >> 1) & 0x03) === 3) return reject('bad-qos', 'PUBLISH with QoS 3'); // [MQTT-3.3.1-4]
    } else if (this.level === 4 && flags !== (type === PUBREL || type === SUBSCRIBE || type === UNSUBSCRIBE ? 0x02 : 0x00)) {
      // 3.1.1 only: MQTT 3.1 sets DUP on a re-sent SUBSCRIBE/UNSUBSCRIBE/PUBREL and reserves nothing else (mosquitto checks neither).
      return reject('reserved-flags', `packet type ${type} with flags ${flags}`); // [MQTT-2.2.2-1] [MQTT-2.2.2-2]
    }
    // Remaining Length (§2.2.3): at most four bytes of 7 bits each.
    let remaining = 0;
    for (let i = 1; i <= 4; i++) {
      if (i >= head.length) return undefined;
      const byte = head[i] as number;
      remaining += (byte & 0x7f) * 128 ** (i - 1);
      if ((byte & 0x80) === 0) {
        const total = i + 1 + remaining;
        if (total > this.maxPacketBytes) return reject('oversized', `${total} bytes declared, at most ${this.maxPacketBytes}`);
        if (type === CONNECT && total > this.maxConnectBytes) return reject('connect-oversized', `CONNECT of ${total} bytes declared, at most ${this.maxConnectBytes}`);
        if (type === CONNECT) this.sawConnect = true;
        return { type, flags, total, headerLength: i + 1 };
      }
    }
    return reject('malformed', 'Remaining Length longer than 4 bytes');
  }

  private checkBody(type: number, flags: number, body: Buffer): GuardRejection | undefined {
    switch (type) {
      case CONNECT: {
        const rejection = checkConnect(body, this.maxTopicLevels);
        if (!rejection) this.level = (body[2 + body.readUInt16BE(0)] as number) & 0x7f;
        return rejection;
      }
      case PUBLISH:
        return checkPublish(flags, body, this.level, this.maxTopicLevels);
      case SUBSCRIBE:
      case UNSUBSCRIBE:
        return checkFilters(type, body, this.maxTopicLevels);
      case PINGREQ:
      case DISCONNECT:
        return body.length === 0 ? undefined : reject('malformed', `packet type ${type} with a body`); // §3.12.1, §3.14.1
      default: // PUBACK, PUBREC, PUBREL, PUBCOMP: exactly a non-zero packet id (§3.4–3.7)
        return body.length === 2 && body.readUInt16BE(0) !== 0 ? undefined : reject('malformed', `acknowledgement type ${type} of ${body.length} bytes`);
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }
}

export interface GuardedConnectionOptions {
  /** Largest packet accepted from the client, fixed header included. */
  maxPacketBytes: number;
  /** Largest CONNECT accepted (default: maxPacketBytes). */
  maxConnectBytes?: number;
  /** Deepest topic name or filter accepted (levels). Default DEFAULT_MAX_TOPIC_LEVELS. */
  maxTopicLevels?: number;
  /** Session rules aedes gets wrong, applied to each checked packet both ways (connection-semantics.ts). */
  semantics?: WireSemantics;
  /** Called for the first rule the client breaks; the connection is then closed. */
  onReject: (rejection: GuardRejection) => void;
  /** Bounds on what waits for a client that does not read (see outbox.ts). */
  outgoing: OutboxLimits;
  /** PUBLISH packets the client will not get: over the bound, cut with a stalled client, or held when the connection closed. */
  onDropped: (reason: DropReason, packets: readonly DroppedPublish[]) => void;
  /** The client was cut for not reading. */
  onStalled: () => void;
}

type WriteCallback = (error: Error | null | undefined) => void;

/** Sees every packet both ways once the guard checked it; may rewrite it, or refuse one from the client. */
export interface WireSemantics {
  /** A checked packet from the client, with the client's protocol level: what aedes gets instead, or the rule it breaks. */
  inbound(packet: Buffer, version: number): Buffer | GuardRejection;
  /** A packet about to go on the wire to the client: what goes instead. */
  outbound(packet: Buffer): Buffer;
  /** The broker gave up on this QoS 1/2 message (cleared from the session): no longer in flight. */
  forget(messageId: number): void;
}

/**
 * The stream aedes sees instead of the socket: reads are only the packets
 * the guard let through; writes go to the socket through the outbox, which
 * never makes aedes wait (a client that does not read has its PUBLISH
 * packets dropped and counted instead of holding up the publisher). It
 * keeps the socket's remote address for the access policy.
 */
export class GuardedConnection extends Duplex {
  readonly remoteAddress: string | undefined;
  private readonly guard: MqttGuard;
  private readonly outbox: Outbox;
  private readonly onReject: (rejection: GuardRejection) => void;
  readonly semantics: WireSemantics | undefined;

  constructor(readonly socket: net.Socket, options: GuardedConnectionOptions) {
    super({ allowHalfOpen: false });
    this.remoteAddress = socket.remoteAddress;
    socket.setNoDelay(true); // MQTT packets are small and latency-bound, like mosquitto's writes
    this.guard = new MqttGuard(options.maxPacketBytes, options.maxConnectBytes, options.maxTopicLevels);
    this.onReject = options.onReject;
    this.semantics = options.semantics;
    this.outbox = new Outbox(socket, options.outgoing, { dropped: options.onDropped, stalled: options.onStalled, onWire: options.semantics && ((p) => options.semantics?.outbound(p) ?? p) });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => {
      this.outbox.close();
      this.destroy();
    });
  }

  /** What waits in the outbox for this client. */
  get outgoing(): OutboxStats {
    return this.outbox.stats;
  }

  /** Why the connection ended ('stalled' if the outbox cut it), or undefined while it is open. */
  get endReason(): DropReason | undefined {
    return this.outbox.endReason;
  }

  /** Counts a PUBLISH aedes routed to this client after its connection ended, and will not write. */
  undeliverable(packet: DroppedPublish): void {
    this.outbox.undeliverable(packet);
  }

  override _read(): void {
    this.socket.resume();
  }

  /**
   * aedes (through mqtt-packet) writes a packet as several chunks. They bypass
   * the Writable buffer: the outbox reassembles each packet and hands it to
   * the socket whole, so a packet leaves in one TCP segment (split packets
   * meet Nagle's algorithm and the peer's delayed ACK, about 40 ms per QoS 1
   * message). It always returns true: aedes never waits for a drain.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const done = typeof encoding === 'function' ? encoding : callback;
    try {
      this.outbox.write(typeof chunk === 'string' || Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    } catch (err) {
      this.destroy(err as Error);
    }
    if (done) process.nextTick(done, null);
    return true;
  }

  /** Only end(chunk) gets here; write() bypasses the Writable buffer. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.write(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  /** Lets what is already written (a refusing CONNACK) reach the peer; a peer that never closes its side is cut after 1 s. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.outbox.close();
    this.closeSocket();
    callback(error);
  }

  private onData(chunk: Buffer): void {
    if (this.destroyed) return;
    const fed = this.guard.feed(chunk);
    let rejection = fed.rejection;
    for (const checked of fed.packets) {
      const packet = this.semantics ? this.semantics.inbound(checked, this.guard.version) : checked;
      if (!Buffer.isBuffer(packet)) {
        rejection = packet;
        break;
      }
      const type = (packet[0] as number) >> 4;
      // PUBACK (QoS 1) or PUBREC (QoS 2): the client has this PUBLISH; a stall cut no longer counts it.
      if (type === PUBACK || type === PUBREC) this.outbox.acknowledged(packet.readUInt16BE(2));
      if (!this.push(packet)) this.socket.pause();
    }
    if (!rejection) return;
    this.onReject(rejection);
    this.socket.removeAllListeners('data');
    // Only a refusal the spec answers with a CONNACK waits for the flush; a protocol violation is cut at once.
    if (rejection.connack === undefined) this.socket.destroy();
    else this.closeSocket(Buffer.from([0x20, 0x02, 0x00, rejection.connack]));
    this.destroy();
  }

  private closeSocket(last?: Buffer): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (last) socket.end(last);
    else socket.end();
    const timer = setTimeout(() => socket.destroy(), 1000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }
}
