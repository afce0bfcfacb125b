/**
 * The node's storage: one append-only segment log per stream (each reading
 * channel, each model's outputs, decisions) and one small state document.
 * Streams open on first use; written records are forced to disk every
 * `fsyncInterval`, trading at most that much data on power loss for far fewer
 * SD-card writes (a kill -9 loses nothing: written records are in the OS).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { RuleState } from '../decide/rule-engine.js';
import { LowdbStateStore } from '../storage/lowdb-state-store.js';
import { SegmentLog } from '../storage/segment-log.js';
import type { AppendOnlyStream, StreamStats } from '../storage/stream-store.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { restoreCounters, savedCounters, type SavedCounters } from './persisted-counters.js';
import { describeRecovery } from './recovery-report.js';

export interface NodeState {
  version: 1;
  boots: number;
  lastStartAt: number | null;
  lastStopAt: number | null;
  /** False while running: a start that finds it false knows the last run crashed. */
  cleanShutdown: boolean;
  rules: Record<string, RuleState>;
  /** Counters of the last run and when counting began (persisted-counters.ts); absent in data dirs from before. */
  counters?: SavedCounters;
}

const DEFAULT_STATE: NodeState = { version: 1, boots: 0, lastStartAt: null, lastStopAt: null, cleanShutdown: true, rules: {} };

export class NodeStorage {
  readonly state: LowdbStateStore<NodeState>;
  private readonly streams = new Map<string, Promise<AppendOnlyStream>>();
  private stopFlush: (() => void) | undefined;
  private closed = false;

  constructor(private readonly config: ApiaryConfig, private readonly counters: Counters) {
    this.state = new LowdbStateStore<NodeState>({ file: path.join(config.node.dataDir, 'state.json'), defaults: DEFAULT_STATE });
  }

  async start(): Promise<void> {
    await this.state.open();
    // Recover every stream now, not on first write: a crash is repaired (and
    // counted) at start-up, and status shows streams not yet written this run.
    const existing = await readdir(this.streamsDir, { withFileTypes: true }).catch(() => []);
    await Promise.all(existing.filter((e) => e.isDirectory()).map((e) => this.stream(e.name)));
    // On a first start, create the readings stream now, in the background: its
    // directory and file syncs then overlap with start-up instead of delaying the first reading.
    this.stream('readings').catch(() => undefined);
    const interval = this.config.storage.fsyncInterval;
    if (interval > 0) {
      // Real time, not node time: durability does not speed up with the simulation.
      const timer = setInterval(() => void this.flush().catch(() => this.counters.increment('storage.flush_errors')), interval);
      this.stopFlush = () => clearInterval(timer);
    }
  }

  /**
   * Opens the storage for a run of the node: says what a crash of the last run
   * cut, restores the counters, and marks this run as not yet cleanly stopped.
   * Returns since when the counters count.
   */
  async startRun(logger: Logger, clock: Clock): Promise<number> {
    await this.start();
    const previous = this.state.get();
    if (!previous.cleanShutdown) {
      const recovery = describeRecovery(await this.stats());
      logger.warn({ cut: recovery.streams }, `the last run did not shut down cleanly; ${recovery.text}`);
    }
    const since = restoreCounters(this.counters, previous);
    await this.state.update((s) => { s.boots += 1; s.lastStartAt = clock.now(); s.cleanShutdown = false; s.counters = savedCounters(this.counters, since); });
    return since;
  }

  private get streamsDir(): string {
    return path.join(this.config.node.dataDir, 'streams');
  }

  /** The stream of that name, opened (and recovered) on first use. */
  stream(name: string): Promise<AppendOnlyStream> {
    let opened = this.streams.get(name);
    if (!opened) {
      const log = new SegmentLog({
        dir: path.join(this.streamsDir, name),
        name,
        segmentBytes: this.config.storage.segmentBytes,
        maxBytes: this.config.storage.streamMaxBytes,
        counters: this.counters,
      });
      opened = log.open().then(() => log);
      this.streams.set(name, opened);
    }
    return opened;
  }

  async append(name: string, record: unknown): Promise<number> {
    if (this.closed) throw new Error('storage closed');
    const stream = await this.stream(name);
    const seq = await stream.append(Buffer.from(JSON.stringify(record)));
    if (this.config.storage.fsyncInterval === 0) await stream.flush();
    return seq;
  }

  async flush(): Promise<void> {
    for (const stream of await Promise.all(this.streams.values())) await stream.flush();
  }

  async stats(): Promise<StreamStats[]> {
    return (await Promise.all(this.streams.values())).map((s) => s.stats());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopFlush?.();
    const streams = await Promise.allSettled(this.streams.values());
    for (const result of streams) {
      if (result.status === 'fulfilled') {
        await result.value.flush();
        await result.value.close();
      }
    }
    this.streams.clear();
    await this.state.close();
  }
}
