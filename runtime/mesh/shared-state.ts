/**
 * Apiary-wide facts in one replicated document: members (their keys,
 * owners, capabilities), shared thresholds, the model catalogue. Built on
 * Yjs: a CRDT whose merge is commutative and idempotent, so edits made on
 * both sides of a partition converge to the same document on every node,
 * and a node that reconnects sends only what the other lacks (Yjs state
 * vectors: encodeStateAsUpdate(doc, theirVector)). Yjs rather than
 * Automerge: ~100 KB of pure JavaScript with no WebAssembly, fast on a
 * Cortex-A53, and its binary updates are small (see README, "Dependencies").
 *
 * On disk: every update is appended to a CRC-framed log before it is
 * applied (write-ahead), and the whole document is written atomically as a
 * snapshot when the log grows; start-up loads the snapshot and replays the
 * log (Yjs ignores what it already has). No edit is ever held in memory only.
 */
import { EventEmitter } from 'node:events';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as Y from 'yjs';
import { canonicalJson } from '../canonical-json.js';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { SegmentLog } from '../storage/segment-log.js';
import type { SharedStateBudget } from './shared-state-budget.js';

/** One update on the wire or on disk; a member's whole record is far smaller. */
export const MAX_STATE_UPDATE_BYTES = 256 * 1024;
/** The write-ahead log is folded into the snapshot past this size. */
const COMPACT_AFTER_BYTES = 1024 * 1024;
const SNAPSHOT_FILE = 'shared-state.snapshot';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface SharedStateEvents {
  /** A change, local or remote: `from` is 'local' or the peer it came from. */
  update: [update: Uint8Array, from: string];
}

export class SharedState extends EventEmitter<SharedStateEvents> {
  private readonly doc = new Y.Doc({ gc: true });
  private log: SegmentLog | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private generation = 1;

  constructor(private readonly options: {
    dir: string; counters: Counters; segmentBytes: number;
    /**
     * Checks a peer's update before it is applied (shared-state-rules.ts): a
     * reason refuses it whole (counted mesh.rejected.state_<reason>).
     */
    admit?: (doc: Y.Doc, update: Uint8Array) => string | undefined;
    /** Keys and bytes of the document (shared-state-budget.ts): the part of an update over it is refused. */
    budget?: SharedStateBudget;
  }) {
    super();
  }

  async start(): Promise<void> {
    const snapshot = await readFile(path.join(this.options.dir, SNAPSHOT_FILE)).catch(() => undefined);
    if (snapshot) this.applyTrusted(snapshot);
    // Write-ahead logs wal.<n>; more than one means a compaction was cut short: replay them all.
    const generations = (await readdir(this.options.dir).catch(() => []))
      .map((name) => /^wal\.(\d{1,9})$/.exec(name)?.[1]).filter((n): n is string => n !== undefined).map(Number).sort((a, b) => a - b);
    for (const generation of generations.slice(0, -1)) {
      const old = this.openLog(generation);
      await old.open();
      for await (const record of old.read()) this.applyTrusted(record.payload);
      await old.close();
    }
    this.generation = generations.at(-1) ?? 1;
    this.log = this.openLog(this.generation);
    await this.log.open();
    for await (const record of this.log.read()) this.applyTrusted(record.payload);
    if (generations.length > 1) await this.compact(true);
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      this.emit('update', update, typeof origin === 'string' ? origin : 'local');
    });
  }

  async stop(): Promise<void> {
    await this.queue;
    await this.log?.flush();
    await this.log?.close();
    this.log = undefined;
  }

  /** The whole document as plain JSON: `{ members, thresholds, catalogue, ... }`. */
  toJSON(): Record<string, JsonValue> {
    // Every top-level type is a map. A type first met in a remote update stays untyped
    // until asked for by its kind, so ask for each as a map.
    const out: Record<string, JsonValue> = {};
    for (const name of [...this.doc.share.keys()].sort()) out[name] = this.doc.getMap<JsonValue>(name).toJSON();
    return out;
  }

  /** Canonical bytes of the document (sorted keys): equal on two nodes iff their documents are equal. */
  canonical(): string {
    return canonicalJson(this.toJSON());
  }

  get(map: string, key: string): JsonValue | undefined {
    return this.doc.getMap<JsonValue>(map).get(key);
  }

  /** Sets `map.key` in the raw document, durably, then tells the peers (via the 'update' event). */
  set(map: string, key: string, value: JsonValue): Promise<void> {
    return this.edit((doc) => doc.getMap<JsonValue>(map).set(key, value));
  }

  /** One local edit of the raw document (one transaction), durably, then told to the peers. */
  edit(change: (doc: Y.Doc) => void): Promise<void> {
    return this.serial(async () => {
    let captured: Uint8Array | undefined;
    const capture = (update: Uint8Array) => { captured = update; };
    this.doc.once('update', capture);
    this.doc.transact(() => change(this.doc));
    this.doc.off('update', capture);
    if (captured) {
      this.options.budget?.noteApplied(captured.length);
      await this.persist(captured);
    }
    });
  }

  /** Reads the raw document (the caller must not change it: edits go through edit()). */
  read<R>(look: (doc: Y.Doc) => R): R {
    return look(this.doc);
  }

  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /**
   * What a peer with state vector `theirs` lacks, or undefined if nothing
   * (every edit here is an insert, so a covering vector means nothing is
   * missing; deletions ride along with the insert that overwrote).
   * Throws MESH_MESSAGE_INVALID for a malformed vector.
   */
  diffFor(theirs: Uint8Array): Uint8Array | undefined {
    try {
      const known = Y.decodeStateVector(theirs);
      const mine = Y.decodeStateVector(this.stateVector());
      if ([...mine].every(([client, clock]) => (known.get(client) ?? 0) >= clock)) return undefined;
      return Y.encodeStateAsUpdate(this.doc, theirs);
    } catch (err) {
      throw new ApiaryError(ErrorCodes.MESH_MESSAGE_INVALID, 'malformed shared-state vector', { cause: err });
    }
  }

  /**
   * Applies an update from a peer. It is parsed whole before anything is
   * applied, and written ahead; returns false (and counts) for a malformed one.
   */
  async applyRemote(update: Uint8Array, from: string): Promise<boolean> {
    if (update.length > MAX_STATE_UPDATE_BYTES) {
      this.options.counters.increment('mesh.rejected.state_oversized');
      return false;
    }
    try {
      Y.decodeUpdate(update); // throws on malformed input, before the document is touched
    } catch {
      this.options.counters.increment('mesh.rejected.state_malformed');
      return false;
    }
    return this.serial(async () => {
      const refusal = this.options.admit?.(this.doc, update);
      if (refusal !== undefined) {
        this.options.counters.increment(`mesh.rejected.state_${refusal}`);
        return false;
      }
      // Checked before it is written ahead or applied (shared-state-budget.ts): the part over the budget is refused, counted there.
      const admitted = this.options.budget ? this.options.budget.admit(this.doc, update) : update;
      if (!admitted) return false;
      const before = this.stateVector();
      await this.persist(admitted);
      Y.applyUpdate(this.doc, admitted, from);
      return Buffer.compare(Buffer.from(before), Buffer.from(this.stateVector())) !== 0;
    });
  }

  /** Edits, applies and compaction run one at a time: a snapshot never misses a logged update. */
  private serial<R>(task: () => Promise<R>): Promise<R> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private applyTrusted(update: Uint8Array): void {
    try {
      Y.applyUpdate(this.doc, update, 'disk');
    } catch {
      this.options.counters.increment('mesh.state_unreadable_records');
    }
  }

  private async persist(update: Uint8Array): Promise<void> {
    const log = this.log;
    if (!log) throw new ApiaryError(ErrorCodes.STORAGE_CLOSED, 'shared state is not open');
    await log.append(Buffer.from(update));
    // Queued behind this edit: it runs once the edit is applied.
    if (log.stats().bytes > COMPACT_AFTER_BYTES) void this.serial(() => this.compact()).catch(() => this.options.counters.increment('mesh.state_compaction_errors'));
  }

  /** Snapshot first (atomic), then drop the log: a crash in between only replays what the snapshot has. */
  private async compact(force = false): Promise<void> {
    const old = this.log;
    if (!old || (!force && old.stats().bytes <= COMPACT_AFTER_BYTES)) return;
    await writeFileAtomic(path.join(this.options.dir, SNAPSHOT_FILE), Buffer.from(Y.encodeStateAsUpdate(this.doc)));
    const previous = this.generation;
    this.generation += 1;
    const fresh = this.openLog(this.generation);
    await fresh.open();
    this.log = fresh;
    await old.close();
    for (const name of await readdir(this.options.dir)) {
      const n = /^wal\.(\d{1,9})$/.exec(name)?.[1];
      if (n !== undefined && Number(n) <= previous) await rm(path.join(this.options.dir, name), { recursive: true, force: true });
    }
    this.options.counters.increment('mesh.state_compactions');
  }

  private openLog(generation: number): SegmentLog {
    return new SegmentLog({
      dir: path.join(this.options.dir, `wal.${generation}`),
      name: 'shared-state',
      segmentBytes: this.options.segmentBytes,
      maxBytes: 64 * COMPACT_AFTER_BYTES,
      counters: this.options.counters,
    });
  }
}

