/**
 * MQTT load generation for the broker benchmark: MQTT.js clients (MQTT
 * 3.1.1) for throughput and latency, and a raw-socket subscriber that can
 * stop reading its socket (a stalled consumer). Every wait is bounded.
 */
import net from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';

export const PAYLOAD_BYTES = 64;

export type QoS = 0 | 1;

/** How long stop() waits for publishes already in flight. */
const STOP_GRACE_MS = 5000;

export function connectClient(port: number, clientId: string): Promise<MqttClient> {
  return connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5000, keepalive: 60 });
}

export async function subscribe(client: MqttClient, filter: string, qos: QoS): Promise<void> {
  const granted = await client.subscribeAsync(filter, { qos });
  if (granted.some((g) => g.qos !== qos)) throw new Error(`subscription to ${filter} not granted at QoS ${qos}`);
}

/** A payload (64 bytes unless told) carrying a sequence number in its first 4 bytes. */
function payload(seq: number, bytes = PAYLOAD_BYTES): Buffer {
  const buf = Buffer.alloc(Math.max(4, bytes), 0x61);
  buf.writeUInt32BE(seq, 0);
  return buf;
}

/** Counts the messages a subscriber receives on one topic at a time, and wakes waiters. */
export class Sink {
  private topic = '';
  private count = 0;
  private lastAt = 0;
  private goal = Number.POSITIVE_INFINITY;
  private onGoal: (() => void) | undefined;
  private waitSeq: { seq: number; resolve: (at: number) => void } | undefined;

  constructor(client: MqttClient) {
    client.on('message', (topic, message) => {
      if (topic !== this.topic) return;
      const at = performance.now();
      this.count += 1;
      this.lastAt = at;
      if (this.waitSeq && message.length >= 4 && message.readUInt32BE(0) === this.waitSeq.seq) {
        const { resolve } = this.waitSeq;
        this.waitSeq = undefined;
        resolve(at);
      }
      if (this.count >= this.goal) {
        const done = this.onGoal;
        this.onGoal = undefined;
        done?.();
      }
    });
  }

  /** Starts counting `topic` from zero. */
  expect(topic: string): void {
    this.topic = topic;
    this.count = 0;
    this.lastAt = 0;
    this.goal = Number.POSITIVE_INFINITY;
    this.onGoal = undefined;
  }

  get received(): number {
    return this.count;
  }

  /** performance.now() of the last message counted (0 if none). */
  get lastReceivedAt(): number {
    return this.lastAt;
  }

  /** Resolves true once `n` messages arrived, false if none arrived for `idleMs` or `deadline` passed. */
  waitFor(n: number, idleMs: number, deadline: number): Promise<boolean> {
    if (this.count >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      let last = this.count;
      let lastChange = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        if (this.count !== last) {
          last = this.count;
          lastChange = now;
        }
        if (now - lastChange > idleMs || now > deadline) finish(false);
      }, 50);
      const finish = (ok: boolean) => {
        clearInterval(timer);
        this.onGoal = undefined;
        this.goal = Number.POSITIVE_INFINITY;
        resolve(ok);
      };
      this.goal = n;
      this.onGoal = () => finish(true);
    });
  }

  /** Resolves with the arrival time of the message with sequence number `seq`, or undefined after `ms`. */
  nextSeq(seq: number, ms: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waitSeq = undefined;
        resolve(undefined);
      }, ms);
      this.waitSeq = {
        seq,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }
}

export interface Publishing {
  /** Publishes accepted: QoS 1 PUBACKed by the broker, QoS 0 handed to the socket. */
  acked: number;
  errors: number;
  sent: number;
  readonly finished: Promise<void>;
  /** Stops publishing more (what is in flight stays in flight). */
  stop(): void;
}

/**
 * Publishes `n` messages on `topic`, keeping at most `window` unfinished:
 * QoS 1 waits for PUBACK (the broker's flow control), QoS 0 for the socket
 * to take the packet (TCP back-pressure). Stops at `deadline` (performance.now()).
 */
export function publishMany(client: MqttClient, topic: string, qos: QoS, n: number, window: number, deadline: number, payloadBytes = PAYLOAD_BYTES): Publishing {
  let stopped = false;
  let pumping = false;
  let inFlight = 0;
  let resolveFinished: () => void = () => undefined;
  let grace: NodeJS.Timeout | undefined;
  const state: Publishing = {
    acked: 0,
    errors: 0,
    sent: 0,
    finished: new Promise<void>((resolve) => { resolveFinished = resolve; }),
    stop: () => {
      stopped = true;
      // Callbacks of a connection that died may never come: finish anyway after a grace period.
      grace ??= setTimeout(finish, STOP_GRACE_MS);
      check();
    },
  };
  const timer = setTimeout(() => state.stop(), Math.max(0, deadline - performance.now()));
  function finish(): void {
    clearTimeout(timer);
    clearTimeout(grace);
    resolveFinished();
  }
  function check(): void {
    if (inFlight === 0 && (stopped || state.sent >= n)) finish();
  }
  function pump(): void {
    if (pumping) return; // a synchronous callback inside publish(): the running loop continues
    pumping = true;
    while (!stopped && inFlight < window && state.sent < n) {
      state.sent += 1;
      inFlight += 1;
      client.publish(topic, payload(state.sent, payloadBytes), { qos }, (err) => {
        inFlight -= 1;
        if (err) state.errors += 1;
        else state.acked += 1;
        pump();
      });
    }
    pumping = false;
    check();
  }
  pump();
  return state;
}

export interface ThroughputRun {
  readonly published: number;
  readonly delivered: number;
  /** From the first publish to the last delivery. */
  readonly ms: number;
  readonly msgsPerSecond: number;
  /** CPU of this process (publisher and subscriber together) over the run, % of one core. */
  readonly loadGenCpuPct: number;
}

/** Publishes n messages as fast as flow control allows and counts them at the subscriber. */
export async function throughput(pub: MqttClient, sink: Sink, topic: string, qos: QoS, n: number, window: number, timeoutMs: number): Promise<ThroughputRun> {
  sink.expect(topic);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  const publishing = publishMany(pub, topic, qos, n, window, deadline);
  await sink.waitFor(n, 2000, deadline);
  publishing.stop();
  await publishing.finished;
  const delivered = sink.received;
  const ms = (sink.lastReceivedAt || performance.now()) - t0;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  return { published: publishing.acked, delivered, ms, msgsPerSecond: ms > 0 ? (delivered * 1000) / ms : Number.NaN, loadGenCpuPct: wallMs > 0 ? (cpu.user + cpu.system) / 10 / wallMs : Number.NaN };
}

/** One message in flight: µs from publish() to its arrival at the subscriber; lost ones are counted, not timed. */
export async function latency(pub: MqttClient, sink: Sink, topic: string, qos: QoS, n: number, timeoutMs: number): Promise<{ readonly us: number[]; readonly lost: number }> {
  sink.expect(topic);
  const us: number[] = [];
  let lost = 0;
  const deadline = performance.now() + timeoutMs;
  let lostInARow = 0;
  // Five lost in a row: the broker stopped answering; the caller finds out why.
  for (let seq = 1; seq <= n && performance.now() < deadline && lostInARow < 5; seq += 1) {
    const arrival = sink.nextSeq(seq, 2000);
    const t0 = performance.now();
    pub.publish(topic, payload(seq), { qos });
    const at = await arrival;
    if (at === undefined) {
      lost += 1;
      lostInARow += 1;
    } else {
      lostInARow = 0;
      us.push((at - t0) * 1000);
    }
  }
  return { us, lost };
}

/** The q-quantile (0..1) of the values, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

// ---- a raw MQTT 3.1.1 subscriber, so "stops reading its socket" means exactly that ----

export function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

function utf8(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length, 0);
  return Buffer.concat([len, body]);
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

/**
 * Connects with a clean session and keepalive 0 (so the broker never drops
 * it for silence), subscribes, and counts PUBLISH packets, answering QoS 1
 * with PUBACK. pause() stops reading the socket: the kernel buffers fill,
 * then the broker's writes back up.
 */
export class RawSubscriber {
  delivered = 0;
  private buf: Buffer = Buffer.alloc(0);
  private readonly socket: net.Socket;
  private onPacket: ((type: number, body: Buffer) => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined); // seen as a short count; close() cleans up
  }

  static async connect(port: number, clientId: string, filter: string, qos: QoS, timeoutMs = 5000): Promise<RawSubscriber> {
    const socket = net.connect(port, '127.0.0.1');
    const sub = new RawSubscriber(socket);
    try {
      await sub.exchange(() => socket.write(packet(0x10, Buffer.concat([utf8('MQTT'), Buffer.from([4, 0x02, 0, 0]), utf8(clientId)]))), 2, timeoutMs, (body) => {
        if (body[1] !== 0) throw new Error(`CONNACK return code ${String(body[1])}`);
      });
      await sub.exchange(() => socket.write(packet(0x82, Buffer.concat([Buffer.from([0, 1]), utf8(filter), Buffer.from([qos])]))), 9, timeoutMs, (body) => {
        if (body[2] !== qos) throw new Error(`SUBACK granted ${String(body[2])}, asked ${qos}`);
      });
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return sub;
  }

  /** Sends, then waits for the packet of `type` (CONNACK 2, SUBACK 9). */
  private exchange(sendIt: () => void, type: number, timeoutMs: number, check: (body: Buffer) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no packet type ${type} within ${timeoutMs} ms`)), timeoutMs);
      const onClose = () => finish(new Error('connection closed'));
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
        this.onPacket = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.socket.once('close', onClose);
      this.onPacket = (t, body) => {
        if (t !== type) return;
        try {
          check(body);
          finish();
        } catch (err) {
          finish(err as Error);
        }
      };
      this.socket.once('connect', sendIt);
      if (!this.socket.connecting) {
        this.socket.off('connect', sendIt);
        sendIt();
      }
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let offset = 0;
    for (;;) {
      // fixed header: type/flags byte, then 1-4 bytes of remaining length
      let len = 0;
      let mult = 1;
      let i = offset + 1;
      let complete = false;
      while (i < this.buf.length && i < offset + 5) {
        const byte = this.buf[i] as number;
        len += (byte & 0x7f) * mult;
        mult *= 128;
        i += 1;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + len > this.buf.length) break;
      const first = this.buf[offset] as number;
      const body = this.buf.subarray(i, i + len);
      offset = i + len;
      const type = first >> 4;
      if (type === 3) {
        this.delivered += 1;
        if (((first >> 1) & 3) === 1) {
          const topicLen = body.readUInt16BE(0);
          this.socket.write(Buffer.from([0x40, 2, body[2 + topicLen] as number, body[3 + topicLen] as number]));
        }
      }
      this.onPacket?.(type, body);
    }
    this.buf = offset >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(offset));
  }

  /** Stops reading the socket (libuv stops reading; the kernel receive buffer fills up). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }
}
