/**
 * The uplink: an optional bridge of chosen feed streams (readings,
 * decisions, ...) to an external MQTT broker (EMQX, Mosquitto, HiveMQ), for
 * a fleet that outgrows one local mesh.
 *
 * Nothing is lost while the uplink is down, because nothing waits in memory:
 * - The source of truth is the FeedStore on disk. Per origin, a cursor holds
 *   the last seq the external broker confirmed (PUBACK, QoS 1), or that was
 *   passed over (a type not bridged, or dropped by retention). It is written
 *   atomically (temp, fsync, rename) at most every `saveMs` and at stop().
 * - A pump reads the entries beyond the cursor, oldest first, makes them
 *   durable (an entry leaves the node only once a power cut cannot undo it,
 *   as in the mesh) and publishes them with QoS 1, at most `maxInFlight`
 *   unconfirmed at a time. The cursor advances only over a run of confirmed
 *   entries, in seq order, so a gap is never confirmed.
 * - While the broker is unreachable nothing is published (the client must be
 *   connected), so MQTT.js's offline queue never grows; MQTT.js reconnects
 *   every `reconnectMs`, re-sends the few unconfirmed messages it holds
 *   (bounded by the window), and the pump goes on from where it was. After a
 *   restart the pump starts from the persisted cursor.
 * - A cursor file that is not valid is counted (`uplink.cursor_malformed`)
 *   and treated as empty: everything held is sent again. If retention
 *   dropped entries beyond the cursor before they were sent, the pump skips
 *   to the first one held and counts them (`uplink.skipped_retention`).
 *
 * Delivery is AT LEAST ONCE: after a crash (cursor older than the last
 * PUBACK by up to `saveMs`), a reconnect in the middle of a window, or a
 * cursor file lost or malformed, entries are published again. Each message
 * names its origin and seq, which identify an entry everywhere: consumers
 * dedupe on (origin, seq) (keep the highest seq seen per origin, or a set).
 *
 * Topics follow the node's own scheme (runtime/bus/topics.ts), under
 * `topicPrefix` and the entry's origin:
 *   <prefix>/<origin>/readings/<channel>   type 'reading'  (body.channel)
 *   <prefix>/<origin>/models/<model>       type 'model'    (body.model)
 *   <prefix>/<origin>/decisions/<rule>     type 'decision' (body.rule), retained
 *   <prefix>/<origin>/feed/<type>          any other type, or a body without
 *                                          a usable name (`uplink.topic_fallback`)
 * Payload: the body's JSON object with the entry's identity added at the top
 * level, `{...body, "origin", "seq", "hlc": {"l", "c"}}` (these three win
 * over same-named body fields); a body that is not an object is carried as
 * `{"body": <value>, "origin", "seq", "hlc"}`. The protocol is MQTT 3.1.1,
 * which every broker speaks; no user properties are used.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { nodeTopics, type NodeTopics } from '../bus/topics.js';
import type { Counters } from '../counters.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import type { FeedEntry } from './feed-entry.js';
import type { FeedStore } from './feed-store.js';

export interface UplinkOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the external broker. */
  url: string;
  username?: string;
  password?: string;
  clientId: string;
  store: FeedStore;
  /** The cursor file (JSON, written atomically); one per external broker. */
  stateFile: string;
  /** Entry types to bridge, e.g. ['reading', 'decision']; the others only move the cursor. */
  types: readonly string[];
  /** 'own' (default): this node's feed only; 'all': every origin the store holds (a gateway). */
  origins?: 'all' | 'own';
  ownNodeId: string;
  topicPrefix: string;
  counters: Counters;
  logger: Logger;
  /** Fallback wake-up of the pump when notify() is not called (default 1000 ms). */
  pollMs?: number;
  /** Unconfirmed QoS 1 messages at a time (default 32). */
  maxInFlight?: number;
  /** MQTT.js reconnect period (default 2000 ms). */
  reconnectMs?: number;
  /** Cursor writes at most this often (default 1000 ms), and at stop(). */
  saveMs?: number;
  /** How long stop() waits for unconfirmed messages before closing (default 1000 ms). */
  stopGraceMs?: number;
}

export interface UplinkStatus {
  connected: boolean;
  /** Entries beyond the cursor, over the bridged origins (of every type: not yet looked at). */
  lagEntries: number;
  /** Last confirmed seq per bridged origin. */
  cursor: Record<string, number>;
  /** Messages confirmed by the broker since start(). */
  published: number;
  lastError: string | null;
}

/** On disk: {"v":1,"cursor":{"<origin>":<seq>}}. */
interface CursorFile {
  v: 1;
  cursor: Record<string, number>;
}

interface Pending {
  /** Everything up to and including this seq is settled once `done`. */
  readonly upTo: number;
  done: boolean;
}

interface Track {
  /** Last seq confirmed or passed over, in order: the cursor. */
  confirmed: number;
  /** The next seq to read from the store. */
  next: number;
  /** Read and made durable, not sent yet (seq order, before `next`). */
  ready: FeedEntry[];
  /** Sent or passed over, seq order, waiting for what is before them. */
  pending: Pending[];
}

const CURSOR_VERSION = 1;
const ORIGIN_PATTERN = /^[a-z2-7]{12}$/;
/** A name that can be one topic level: no separators or wildcards, printable, at most 128 characters. */
function isTopicLevel(name: string): boolean {
  if (name.length === 0 || name.length > 128) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    // '/', '+', '#', control characters and UTF-16 surrogates (no lone halves, which are not UTF-8)
    if (code === 0x2f || code === 0x2b || code === 0x23 || code < 0x20 || code === 0x7f || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}
/** One read from disk: enough to amortise a segment scan, small enough for a 512 MB board. */
const READ_ENTRIES = 512;
const READ_BYTES = 256 * 1024;
/** Types with a topic of their own, and the body field that names it. */
const ROUTES = new Map<string, { key: string; topic: (topics: NodeTopics, name: string) => string; retain: boolean }>([
  ['reading', { key: 'channel', topic: (t, name) => t.reading(name), retain: false }],
  ['model', { key: 'model', topic: (t, name) => t.model(name), retain: false }],
  // As on the node's own broker: the current decision of a rule is retained (sent in order, so the last is the newest).
  ['decision', { key: 'rule', topic: (t, name) => t.decision(name), retain: true }],
]);

/**
 * Wire notify() to what makes new entries: the Mesh's 'entry' event (entries
 * from peers, for origins 'all') and the node's own appends; `pollMs` is only
 * the fallback. Start it after the Mesh (its store must be open) and stop it
 * before.
 */
export class Uplink {
  private readonly types: ReadonlySet<string>;
  private readonly pollMs: number;
  private readonly maxInFlight: number;
  private readonly saveMs: number;
  private readonly tracks = new Map<string, Track>();
  /** The cursor as loaded, for origins not tracked (yet): kept in the file. */
  private saved: Record<string, number> = {};
  private client: MqttClient | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private loop: Promise<void> | undefined;
  /** Bumped when the window is dropped: confirmations of older sends are ignored. */
  private epoch = 0;
  private inFlight = 0;
  /** After a failed publish, the pump waits until then. */
  private holdUntil = 0;
  private published = 0;
  private lastError: string | null = null;
  private wasConnected = false;
  private turn = 0;
  private poked = false;
  private wakeUp: (() => void) | undefined;
  private dirty = false;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly options: UplinkOptions) {
    this.types = new Set(options.types);
    this.pollMs = options.pollMs ?? 1_000;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 32);
    this.saveMs = options.saveMs ?? 1_000;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('an Uplink starts once; make a new one');
    const { stateFile, url, clientId, username, password, logger, counters } = this.options;
    await mkdir(path.dirname(stateFile), { recursive: true });
    await this.removeStaleTemps();
    this.saved = await this.loadCursor();
    this.state = 'running';
    const client = connect(url, {
      clientId,
      username,
      password,
      protocolVersion: 4,
      clean: true, // a publisher needs no session: unconfirmed messages are re-sent from the store
      reconnectPeriod: this.options.reconnectMs ?? 2_000,
      connectTimeout: 10_000,
      keepalive: 30,
      queueQoSZero: false,
      resubscribe: false,
    });
    this.client = client;
    client.on('connect', () => {
      this.wasConnected = true;
      this.lastError = null;
      logger.info({ url: redact(url), lag: this.lag() }, 'uplink connected');
      this.wake();
    });
    client.on('close', () => {
      if (!this.wasConnected || this.state !== 'running') return;
      this.wasConnected = false;
      logger.warn({ url: redact(url), inFlight: this.inFlight }, 'uplink down: entries wait in the feed store');
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      counters.increment('uplink.connection_errors');
      logger.debug({ err: err.message }, 'uplink connection error');
    });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    this.wake();
    await this.loop;
    const client = this.client;
    this.client = undefined;
    // A moment for what is in flight to be confirmed, so the cursor covers it (fewer duplicates later).
    const deadline = Date.now() + (this.options.stopGraceMs ?? 1_000);
    while (client?.connected && this.inFlight > 0 && Date.now() < deadline) await this.sleep(20);
    this.epoch++; // the client fails what is still unconfirmed on end: that is not an error here
    this.inFlight = 0;
    await client?.endAsync(true).catch(() => undefined);
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.save();
  }

  /** New entries exist (own append, or applied from a peer): wake the pump. */
  notify(): void {
    this.wake();
  }

  status(): UplinkStatus {
    const cursor: Record<string, number> = {};
    for (const origin of this.origins()) cursor[origin] = this.confirmed(origin);
    return { connected: this.client?.connected === true, lagEntries: this.lag(), cursor, published: this.published, lastError: this.lastError };
  }

  // ---- the pump ----------------------------------------------------------

  private async run(): Promise<void> {
    while (this.state === 'running') {
      this.poked = false;
      let progressed = false;
      try {
        progressed = await this.pumpOnce();
      } catch (err) {
        this.lastError = describeError(err);
        this.options.counters.increment('uplink.errors');
        this.options.logger.warn({ err: this.lastError }, 'uplink pump step failed');
      }
      if (!progressed && this.state === 'running') await this.sleep(this.pollMs);
    }
  }

  /** One pass over the bridged origins; true if anything moved. */
  private async pumpOnce(): Promise<boolean> {
    const client = this.client;
    if (!client?.connected || Date.now() < this.holdUntil) return false;
    const origins = this.origins();
    const first = this.turn++ % Math.max(1, origins.length);
    let progressed = false;
    for (const origin of [...origins.slice(first), ...origins.slice(0, first)]) {
      const track = this.track(origin);
      while (this.state === 'running' && client.connected && this.inFlight < this.maxInFlight) {
        const entry = track.ready.shift();
        if (entry) {
          this.dispatch(client, origin, track, entry);
          progressed = true;
          continue;
        }
        if (track.next > this.options.store.head(origin).seq) break;
        const epoch = this.epoch;
        const before = track.next;
        await this.fill(origin, track);
        if (epoch !== this.epoch) return true; // the window was dropped meanwhile: start over
        if (track.next === before) break; // nothing readable now
        progressed = true;
      }
    }
    return progressed;
  }

  /** Reads the next entries of `origin` into `track.ready`, durable; skips what retention dropped. */
  private async fill(origin: string, track: Track): Promise<void> {
    const { store, counters, logger } = this.options;
    const from = track.next;
    const epoch = this.epoch;
    // A feed held sparsely (sparse-replication.ts) has holes where entries were not kept: passed over, not lost.
    const sparse = store.holdsSparsely(origin);
    const head = store.head(origin).seq; // before the read: a kept entry is on disk before the head moves past it
    const read: FeedEntry[] = [];
    let bytes = 0;
    for await (const entry of store.read(origin, from, READ_ENTRIES)) {
      read.push(entry);
      bytes += entry.body.length;
      if (bytes >= READ_BYTES) break;
    }
    // Own entries leave the node only once durable: a power cut must not make it sign another history for a seq sent.
    if (read.length > 0) await store.flush();
    if (epoch !== this.epoch || this.state !== 'running') return;
    if (sparse && read.length === 0 && head >= from) {
      counters.increment('uplink.skipped_not_kept', head - from + 1);
      this.passOver(track, head);
      track.next = head + 1;
      return;
    }
    let expected = from;
    for (const entry of read) {
      if (entry.seq < expected) continue;
      if (entry.seq > expected) {
        if (track.ready.length > 0) break; // the gap is handled on the next read, in order
        const skipped = entry.seq - expected;
        if (sparse) {
          counters.increment('uplink.skipped_not_kept', skipped);
        } else {
          counters.increment('uplink.skipped_retention', skipped);
          logger.warn({ origin, from: expected, to: entry.seq - 1, skipped }, 'uplink: retention dropped entries before they were sent');
        }
        this.passOver(track, entry.seq - 1);
      }
      track.ready.push(entry);
      expected = entry.seq + 1;
    }
    track.next = expected;
  }

  private dispatch(client: MqttClient, origin: string, track: Track, entry: FeedEntry): void {
    if (!this.types.has(entry.type)) {
      this.passOver(track, entry.seq);
      return;
    }
    const item: Pending = { upTo: entry.seq, done: false };
    track.pending.push(item);
    this.inFlight++;
    const epoch = this.epoch;
    const message = this.message(entry);
    client.publish(message.topic, message.payload, { qos: 1, retain: message.retain }, (err) => {
      if (epoch !== this.epoch) return;
      this.inFlight--;
      if (err) {
        this.lastError = err.message;
        this.options.counters.increment('uplink.publish_errors');
        this.options.logger.warn({ origin, seq: entry.seq, err: err.message }, 'uplink publish failed: re-sending from the cursor');
        this.rewind();
        return;
      }
      item.done = true;
      this.published++;
      this.options.counters.increment('uplink.published');
      this.settle(track);
      this.wake();
    });
  }

  /** Settles everything up to `upTo` without sending it; a run of such is one item, so the window stays small. */
  private passOver(track: Track, upTo: number): void {
    const last = track.pending.at(-1);
    if (last?.done) track.pending[track.pending.length - 1] = { upTo, done: true };
    else track.pending.push({ upTo, done: true });
    this.settle(track);
  }

  /** Moves the cursor over the settled run at the front of the window. */
  private settle(track: Track): void {
    let moved = false;
    for (let head = track.pending[0]; head?.done; head = track.pending[0]) {
      track.confirmed = head.upTo;
      track.pending.shift();
      moved = true;
    }
    if (moved) this.cursorChanged();
  }

  /** Drops the window: everything after the cursor is read and sent again (at least once). */
  private rewind(): void {
    this.epoch++;
    this.inFlight = 0;
    this.holdUntil = Date.now() + this.pollMs; // no storm of re-sends if the failure persists
    for (const track of this.tracks.values()) {
      track.pending = [];
      track.ready = [];
      track.next = track.confirmed + 1;
    }
  }

  private message(entry: FeedEntry): { topic: string; payload: string; retain: boolean } {
    const identity = { origin: entry.origin, seq: entry.seq, hlc: { l: entry.hlc.l, c: entry.hlc.c } };
    const body = JSON.parse(entry.body) as unknown;
    const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
    const payload = JSON.stringify(isObject ? { ...(body as Record<string, unknown>), ...identity } : { body, ...identity });
    const topics = nodeTopics(this.options.topicPrefix, entry.origin);
    const route = ROUTES.get(entry.type);
    if (route) {
      const level = isObject ? (body as Record<string, unknown>)[route.key] : undefined;
      if (typeof level === 'string' && isTopicLevel(level)) return { topic: route.topic(topics, level), payload, retain: route.retain };
      this.options.counters.increment('uplink.topic_fallback');
    }
    return { topic: `${topics.base}/feed/${entry.type}`, payload, retain: false };
  }

  // ---- origins and cursor ------------------------------------------------

  private origins(): string[] {
    if ((this.options.origins ?? 'own') === 'own') return [this.options.ownNodeId];
    return Object.keys(this.options.store.have()).sort();
  }

  private track(origin: string): Track {
    let track = this.tracks.get(origin);
    if (!track) {
      const confirmed = this.saved[origin] ?? 0;
      track = { confirmed, next: confirmed + 1, ready: [], pending: [] };
      this.tracks.set(origin, track);
    }
    return track;
  }

  private confirmed(origin: string): number {
    return this.tracks.get(origin)?.confirmed ?? this.saved[origin] ?? 0;
  }

  private lag(): number {
    let lag = 0;
    for (const origin of this.origins()) lag += Math.max(0, this.options.store.head(origin).seq - this.confirmed(origin));
    return lag;
  }

  private cursorChanged(): void {
    this.dirty = true;
    if (this.saveTimer || this.state !== 'running') return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, this.saveMs);
    this.saveTimer.unref();
  }

  /** Writes the cursor if it moved; serialised, never throws (a failed write is retried later). */
  private save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const cursor: Record<string, number> = { ...this.saved };
      for (const [origin, track] of this.tracks) cursor[origin] = track.confirmed;
      const file: CursorFile = { v: CURSOR_VERSION, cursor };
      try {
        await writeFileAtomic(this.options.stateFile, `${JSON.stringify(file)}\n`);
      } catch (err) {
        this.dirty = true;
        this.lastError = describeError(err);
        this.options.counters.increment('uplink.cursor_write_errors');
        this.options.logger.warn({ err: this.lastError }, 'uplink: could not write the cursor');
        if (this.state === 'running') this.cursorChanged();
      }
    });
    return this.saving;
  }

  private async loadCursor(): Promise<Record<string, number>> {
    const { stateFile, counters, logger } = this.options;
    let text: string;
    try {
      text = await readFile(stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      return parseCursor(text);
    } catch (err) {
      counters.increment('uplink.cursor_malformed');
      logger.warn({ file: stateFile, why: describeError(err) }, 'uplink cursor file is malformed: sending everything held again (consumers dedupe on origin+seq)');
      return {};
    }
  }

  /** Temp files a crashed writer left beside the cursor file (writeFileAtomic names them <file>.tmp-<pid>). */
  private async removeStaleTemps(): Promise<void> {
    const { stateFile } = this.options;
    const prefix = `${path.basename(stateFile)}.tmp-`;
    const names = await readdir(path.dirname(stateFile)).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) await unlink(path.join(path.dirname(stateFile), name)).catch(() => undefined);
    }
  }

  // ---- waiting -----------------------------------------------------------

  private wake(): void {
    this.poked = true;
    this.wakeUp?.();
  }

  /** Sleeps until woken or `ms` passed; returns at once if woken since the pass began. */
  private sleep(ms: number): Promise<void> {
    if (this.poked) {
      this.poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }
}

function parseCursor(text: string): Record<string, number> {
  const raw = JSON.parse(text) as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
  const file = raw as Partial<CursorFile>;
  if (file.v !== CURSOR_VERSION) throw new Error(`version ${String(file.v)}, expected ${CURSOR_VERSION}`);
  const cursor = file.cursor as unknown;
  if (cursor === null || typeof cursor !== 'object' || Array.isArray(cursor)) throw new Error('cursor is not an object');
  const out: Record<string, number> = {};
  for (const [origin, seq] of Object.entries(cursor as Record<string, unknown>)) {
    if (!ORIGIN_PATTERN.test(origin)) throw new Error(`"${origin.slice(0, 32)}" is not a node id`);
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new Error(`seq of ${origin} is not a whole number`);
    out[origin] = seq;
  }
  return out;
}

/** The URL without credentials, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}
