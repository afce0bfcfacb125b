/**
 * What the broker sends one client, between aedes and the client's socket.
 *
 * aedes waits for a slow client's socket to drain before it finishes routing
 * a message, and reads the publisher's next packet only after that: one
 * subscriber that stops reading stops the publisher, and with it every other
 * subscriber. After its drainTimeout it closes the slow connection, and what
 * sat in buffers is lost without a count.
 *
 * The outbox never makes aedes wait. While the socket takes what is written
 * (the kernel's buffers are not full), packets go straight to it. Once it
 * does not, packets wait here, up to a bound like mosquitto's
 * max_queued_messages / max_queued_bytes; a PUBLISH beyond the bound is
 * dropped and counted. Control packets (PUBACK, SUBACK, PINGRESP...) are
 * never dropped. A client whose socket takes nothing for `stallTimeoutMs`
 * while packets wait (no 'drain': Node's write buffer for it, at least
 * 16 KiB, did not empty) is cut (TCP reset), and every PUBLISH it had not
 * received is counted: the ones still queued here, and the QoS 1/2 ones
 * written but never acknowledged. A QoS 0 PUBLISH already handed to the
 * kernel cannot be followed further: it is delivered or lost with the
 * connection, as QoS 0 allows.
 */
import type net from 'node:net';

export interface OutboxLimits {
  /** PUBLISH packets held for a client whose socket is full; more are dropped. 0 = no limit. */
  readonly maxQueuedMessages: number;
  /** Bytes of packets held for a client whose socket is full; a PUBLISH that does not fit is dropped. 0 = no limit. */
  readonly maxQueuedBytes: number;
  /** A socket that takes nothing for this long while packets wait is cut. 0 = never. */
  readonly stallTimeoutMs: number;
}

/** queue_full: over the bound; stalled: cut for not reading; closed: held for a connection that closed. */
export type DropReason = 'queue_full' | 'stalled' | 'closed';

/** A PUBLISH the client did not get: QoS (1 stands for 1 or 2 once written) and packet id, enough to clear it from a persistent session. */
export interface DroppedPublish {
  readonly qos: number;
  readonly messageId: number | undefined;
}

export interface OutboxEvents {
  dropped(reason: DropReason, packets: readonly DroppedPublish[]): void;
  /** The socket was cut for not reading; `dropped('stalled', ...)` has been reported. */
  stalled(): void;
  /** Each packet as it goes on the wire (not when queued): what is written instead (connection-semantics.ts). */
  onWire?: (packet: Buffer) => Buffer;
}

export interface OutboxStats {
  /** Packets (of them PUBLISH) and bytes waiting for the socket. */
  readonly queuedPackets: number;
  readonly queuedPublishes: number;
  readonly queuedBytes: number;
  /** The socket has refused more (its buffers are full) and the outbox waits for it to drain. */
  readonly waiting: boolean;
  /** QoS 1/2 PUBLISH packets written and not yet acknowledged by the client. */
  readonly unacknowledged: number;
}

const PUBLISH = 3;
/** Fixed header: one type byte and at most four bytes of Remaining Length (§2.2.3). */
const MAX_HEADER = 5;

function publishInfo(packet: Buffer): DroppedPublish {
  const qos = ((packet[0] as number) >> 1) & 0x03;
  if (qos === 0) return { qos, messageId: undefined };
  let i = 1;
  while (((packet[i] as number) & 0x80) !== 0) i += 1;
  const topicAt = i + 1;
  const idAt = topicAt + 2 + packet.readUInt16BE(topicAt);
  return { qos, messageId: packet.readUInt16BE(idAt) };
}

/**
 * Reassembles the chunks aedes writes (mqtt-packet writes a PUBLISH as header
 * byte, length, topic length, topic string, packet id and payload) into whole
 * packets, copying each chunk once into a buffer of the packet's size.
 */
export class PacketFramer {
  private readonly head = Buffer.alloc(MAX_HEADER);
  private headLength = 0;
  private packet: Buffer | undefined;
  private filled = 0;

  /** Feeds one chunk; `emit` gets each packet it completes. Throws on bytes that are not MQTT packets. */
  feed(chunk: Buffer | string, emit: (packet: Buffer) => void): void {
    if (typeof chunk === 'string') {
      if (this.packet) {
        const length = Buffer.byteLength(chunk);
        if (this.filled + length <= this.packet.length) {
          this.packet.write(chunk, this.filled, 'utf8');
          this.filled += length;
          this.completed(emit);
          return;
        }
      }
      chunk = Buffer.from(chunk, 'utf8');
    }
    let pos = 0;
    while (pos < chunk.length) {
      const packet = this.packet;
      if (packet) {
        const n = Math.min(packet.length - this.filled, chunk.length - pos);
        chunk.copy(packet, this.filled, pos, pos + n);
        this.filled += n;
        pos += n;
        this.completed(emit);
        continue;
      }
      if (this.headLength === 0) {
        // A whole packet in what is left of the chunk is passed on without a copy.
        const total = frameLength(chunk, pos);
        if (total > 0 && pos + total <= chunk.length) {
          emit(chunk.subarray(pos, pos + total));
          pos += total;
          continue;
        }
      }
      const byte = chunk[pos] as number;
      pos += 1;
      this.head[this.headLength] = byte;
      this.headLength += 1;
      if (this.headLength >= 2 && (byte & 0x80) === 0) {
        const total = frameLength(this.head, 0);
        const next = Buffer.allocUnsafe(total);
        this.head.copy(next, 0, 0, this.headLength);
        this.packet = next;
        this.filled = this.headLength;
        this.headLength = 0;
        this.completed(emit);
      } else if (this.headLength === MAX_HEADER) {
        throw new Error('outgoing Remaining Length longer than 4 bytes');
      }
    }
  }

  /** Bytes of a packet begun and not finished. */
  get pending(): number {
    return this.packet ? this.filled : this.headLength;
  }

  private completed(emit: (packet: Buffer) => void): void {
    const packet = this.packet;
    if (!packet || this.filled < packet.length) return;
    this.packet = undefined;
    this.filled = 0;
    emit(packet);
  }
}

/** Total length of the packet whose fixed header starts at `pos`, or 0 while its header is incomplete. */
function frameLength(buf: Buffer, pos: number): number {
  let remaining = 0;
  for (let i = 1; i < MAX_HEADER; i += 1) {
    if (pos + i >= buf.length) return 0;
    const byte = buf[pos + i] as number;
    remaining += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return i + 1 + remaining;
  }
  return 0;
}

export class Outbox {
  private readonly framer = new PacketFramer();
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private queuedPublishes = 0;
  private waiting = false;
  /** Packet id → QoS 1/2 PUBLISH packets written with it and not acknowledged (aedes may reuse an id still in flight). */
  private readonly unacked = new Map<number, number>();
  private unackedCount = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Why the connection ended, once it has: later packets are dropped with this reason. */
  private ended: DropReason | undefined;
  /** The socket is corked until the end of this tick, so packets written together leave in one write. */
  private corked = false;
  private readonly emitPacket = (packet: Buffer) => this.send(packet);
  private readonly uncork = () => {
    this.corked = false;
    this.socket.uncork();
  };
  private readonly onDrain = () => this.drained();

  constructor(private readonly socket: net.Socket, private readonly limits: OutboxLimits, private readonly events: OutboxEvents) {}

  /** One chunk written by aedes. */
  write(chunk: Buffer | string): void {
    this.framer.feed(chunk, this.emitPacket);
  }

  /** The client acknowledged a QoS 1 (PUBACK) or QoS 2 (PUBREC) PUBLISH. */
  acknowledged(messageId: number): void {
    const n = this.unacked.get(messageId);
    if (n === undefined) return;
    this.unackedCount -= 1;
    if (n > 1) this.unacked.set(messageId, n - 1);
    else this.unacked.delete(messageId);
  }

  /** Why the connection ended ('stalled' if the outbox cut it), or undefined while it is open. */
  get endReason(): DropReason | undefined {
    return this.ended;
  }

  /** A PUBLISH routed to this client after its connection ended, which will not be written: counted like the rest. */
  undeliverable(packet: DroppedPublish): void {
    this.events.dropped(this.ended ?? 'closed', [packet]);
  }

  get stats(): OutboxStats {
    return { queuedPackets: this.queue.length - this.head, queuedPublishes: this.queuedPublishes, queuedBytes: this.queuedBytes, waiting: this.waiting, unacknowledged: this.unackedCount };
  }

  /** The connection is over: what is still queued is dropped (and counted) as `closed`. Idempotent. */
  close(): void {
    if (this.ended) return;
    this.ended = 'closed';
    this.stop();
    const dropped = this.takeQueuedPublishes();
    this.forgetUnacknowledged();
    if (dropped.length > 0) this.events.dropped('closed', dropped);
  }

  private send(packet: Buffer): void {
    const type = (packet[0] as number) >> 4;
    if (!this.ended && (this.socket.destroyed || this.socket.writableEnded)) this.close();
    if (this.ended) {
      if (type === PUBLISH) this.events.dropped(this.ended, [publishInfo(packet)]);
      return;
    }
    if (!this.waiting) {
      this.put(packet, type);
      return;
    }
    const { maxQueuedMessages, maxQueuedBytes } = this.limits;
    if (type === PUBLISH) {
      if ((maxQueuedMessages > 0 && this.queuedPublishes >= maxQueuedMessages) || (maxQueuedBytes > 0 && this.queuedBytes + packet.length > maxQueuedBytes)) {
        this.events.dropped('queue_full', [publishInfo(packet)]);
        return;
      }
      this.queuedPublishes += 1;
    }
    this.queue.push(packet);
    this.queuedBytes += packet.length;
  }

  /** Hands a packet to the socket; false once the socket wants no more until it drains. */
  private put(packet: Buffer, type: number): boolean {
    if (this.events.onWire) packet = this.events.onWire(packet);
    if (type === PUBLISH && (packet[0] as number) & 0x06) {
      const { messageId } = publishInfo(packet);
      if (messageId !== undefined) {
        this.unacked.set(messageId, (this.unacked.get(messageId) ?? 0) + 1);
        this.unackedCount += 1;
      }
    }
    if (!this.corked) {
      // A batch of PUBACKs, or a SUBACK and retained messages, are written in one tick: one syscall for them all.
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    if (this.socket.write(packet)) return true;
    this.wait();
    return false;
  }

  private wait(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.socket.once('drain', this.onDrain);
    const ms = this.limits.stallTimeoutMs;
    if (ms <= 0) return;
    // One timer per connection, re-armed from now at each wait (refresh() also re-arms one that fired while not waiting).
    if (this.stallTimer) this.stallTimer.refresh();
    else {
      this.stallTimer = setTimeout(() => this.stall(), ms);
      this.stallTimer.unref();
    }
  }

  /** The socket took everything written so far: the client is reading. Sends what waited, up to the next full buffer. */
  private drained(): void {
    this.waiting = false; // the stall timer, if it fires now, finds nothing waiting
    if (this.ended) return;
    const socket = this.socket;
    socket.cork();
    try {
      while (this.head < this.queue.length) {
        const packet = this.queue[this.head] as Buffer;
        this.queue[this.head] = EMPTY;
        this.head += 1;
        this.queuedBytes -= packet.length;
        const type = (packet[0] as number) >> 4;
        if (type === PUBLISH) this.queuedPublishes -= 1;
        if (!this.put(packet, type)) break;
      }
    } finally {
      socket.uncork();
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Nothing drained for stallTimeoutMs: cut the client, counting every PUBLISH it did not get. */
  private stall(): void {
    if (this.ended || !this.waiting) return;
    this.ended = 'stalled';
    this.stop();
    const dropped = this.takeQueuedPublishes();
    for (const [messageId, n] of this.unacked) for (let i = 0; i < n; i += 1) dropped.push({ qos: 1, messageId });
    this.forgetUnacknowledged();
    this.events.dropped('stalled', dropped);
    this.events.stalled();
    // A reset, not a FIN: the kernel discards what it still holds for the client instead of trying to deliver it for minutes.
    try {
      this.socket.resetAndDestroy();
    } catch {
      this.socket.destroy(); // TLS sockets cannot be reset
    }
  }

  private stop(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.socket.off('drain', this.onDrain);
    this.waiting = false;
  }

  private forgetUnacknowledged(): void {
    this.unacked.clear();
    this.unackedCount = 0;
  }

  private takeQueuedPublishes(): DroppedPublish[] {
    const dropped: DroppedPublish[] = [];
    for (let i = this.head; i < this.queue.length; i += 1) {
      const packet = this.queue[i] as Buffer;
      if ((packet[0] as number) >> 4 === PUBLISH) dropped.push(publishInfo(packet));
    }
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.queuedPublishes = 0;
    return dropped;
  }
}

const EMPTY = Buffer.alloc(0);
