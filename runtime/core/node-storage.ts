/**
 * The node's storage: the streams (readings, each model's outputs,
 * decisions) and one small state document. A record is written once: into
 * the node's own signed feed when the mesh shares that stream (the stream is
 * then an index over the feed, feed-index.ts, and the mesh's group commit is
 * its fsync), else into the stream's own append-only segment log, forced to
 * disk every `fsyncInterval`, trading at most that much data on power loss
 * for far fewer SD-card writes (a kill -9 loses nothing: written records are
 * in the OS). Streams open on first use.
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
import type { FeedEntry } from '../mesh/feed-entry.js';
import { FeedIndex, feedHeadOnDisk, type OwnFeed } from './feed-index.js';
import { StreamView } from './stream-view.js';
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

/** How far a sealed stream's own log is kept ahead of its records in the feed (see route()). */
export const SEALED_LOG_LEAD = 4096;

const DEFAULT_STATE: NodeState = { version: 1, boots: 0, lastStartAt: null, lastStopAt: null, cleanShutdown: true, rules: {} };

export class NodeStorage {
  readonly state: LowdbStateStore<NodeState>;
  private readonly streams = new Map<string, Promise<StreamView>>();
  private readonly index: FeedIndex;
  /** Per stream: the last routing step (route()), so records of one stream are routed one at a time. */
  private readonly routing = new Map<string, Promise<void>>();
  /** Streams whose log was moved past the feed's records with the mesh off (once a run). */
  private readonly offlineChecked = new Set<string>();
  private stopFlush: (() => void) | undefined;
  private closed = false;

  constructor(private readonly config: ApiaryConfig, private readonly counters: Counters) {
    this.state = new LowdbStateStore<NodeState>({ file: path.join(config.node.dataDir, 'state.json'), defaults: DEFAULT_STATE });
    this.index = new FeedIndex(this.streamsDir, counters);
  }

  async start(): Promise<void> {
    await this.state.open();
    await this.index.load();
    // Recover every stream now, not on first write: a crash is repaired (and
    // counted) at start-up, and status shows streams not yet written this run.
    const existing = await readdir(this.streamsDir, { withFileTypes: true }).catch(() => []);
    await Promise.all(existing.filter((e) => e.isDirectory()).map((e) => this.stream(e.name)));
    // On a first start, create the readings stream now, in the background: its
    // directory and file syncs then overlap with start-up instead of delaying the first reading.
    this.view('readings').catch(() => undefined);
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

  /**
   * The node's own feed, once the mesh has opened it: shared streams are
   * written there from now on, and their records in it are indexed (in the
   * background; readers wait for it).
   */
  attachFeed(feed: OwnFeed): void {
    this.index.attach(feed);
  }

  /** The stream of that name, opened (and recovered) on first use; with its records in the feed indexed. */
  async stream(name: string): Promise<AppendOnlyStream> {
    const view = await this.view(name);
    await this.index.ready();
    return view;
  }

  private view(name: string): Promise<StreamView> {
    let opened = this.streams.get(name);
    if (!opened) {
      const log = new SegmentLog({
        dir: path.join(this.streamsDir, name),
        name,
        segmentBytes: this.config.storage.segmentBytes,
        maxBytes: this.config.storage.streamMaxBytes,
        counters: this.counters,
      });
      opened = log.open().then(() => new StreamView(log, this.index));
      this.streams.set(name, opened);
    }
    return opened;
  }

  /** Appends a record to the stream's own log (a stream the mesh does not share, or any with the mesh off). */
  async append(name: string, record: unknown): Promise<number> {
    if (this.closed) throw new Error('storage closed');
    const view = await this.view(name);
    await this.route(name, view, 'log');
    const seq = await view.append(Buffer.from(JSON.stringify(record)));
    if (this.config.storage.fsyncInterval === 0) await view.flush();
    return seq;
  }

  /**
   * Records a record once, as an entry of the node's own feed (`append` signs
   * and appends it, body = the record): the stream indexes it there. The
   * mesh's group commit makes it durable. `sealed`: `append` seals it (a
   * private entry, for the stream's recipients or this node alone), and the
   * stream reads it back with the node's own content key (no X25519).
   */
  async appendToFeed(name: string, record: unknown, append: (body: unknown) => Promise<FeedEntry>, { sealed = false } = {}): Promise<FeedEntry> {
    if (this.closed) throw new Error('storage closed');
    if (!this.index.attached) throw new Error(`stream ${name}: no feed to append to`);
    const view = await this.view(name);
    await this.route(name, view, sealed ? 'sealed' : 'feed');
    const entry = await append(record);
    this.index.add(name, entry);
    if (this.config.storage.fsyncInterval === 0) await this.index.flush();
    return entry;
  }

  /**
   * Makes a stream's seqs go on from where its last records are: a new part
   * in the feed starts after the log, and the log goes on after the feed's
   * part (with the mesh off, after as many seqs as the feed could hold for
   * it). Checked for every record (cheap), one record of a stream at a time.
   *
   * A sealed part also keeps the stream's own log moved on ahead of it
   * (SEALED_LOG_LEAD seqs, one empty segment renamed per that many records):
   * a release from before sealed parts, run on this data dir after a
   * rollback (even one after a kill -9), knows nothing of them and goes on
   * in the log, and must not number its records with their seqs. Sealed
   * parts go on from the log's last record, not from that lead.
   */
  private route(name: string, view: StreamView, home: 'log' | 'feed' | 'sealed'): Promise<void> {
    const step = (this.routing.get(name) ?? Promise.resolve()).then(async () => {
      await this.index.ready();
      const inFeed = this.index.nextSeq(name);
      if (home === 'feed') {
        const next = Math.max(view.log.stats().nextSeq, inFeed);
        if (!this.index.continues(name, next)) await this.index.startPart(name, next);
      } else if (home === 'sealed') {
        const next = Math.max(view.log.recordsEnd(), inFeed);
        // The lead first: a part (or record) the log is not moved past must never be durable.
        if (view.log.stats().nextSeq <= next) await view.log.skipTo(next + SEALED_LOG_LEAD);
        if (!this.index.continues(name, next, true)) await this.index.startPart(name, next, true);
      } else if (this.index.attached) {
        if (view.log.stats().nextSeq < inFeed) await view.log.skipTo(inFeed);
      } else if (!this.offlineChecked.has(name)) {
        const dir = (origin: string) => path.join(this.config.node.dataDir, 'mesh', 'feeds', origin);
        await view.log.skipTo(await this.index.offlineNextSeq(name, (origin) => feedHeadOnDisk(dir(origin))));
        this.offlineChecked.add(name);
      }
    });
    this.routing.set(name, step.catch(() => undefined));
    return step;
  }

  async flush(): Promise<void> {
    for (const stream of await Promise.all(this.streams.values())) await stream.flush();
  }

  async stats(): Promise<StreamStats[]> {
    const views = await Promise.all(this.streams.values());
    await this.index.ready();
    return views.map((s) => s.stats());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopFlush?.();
    await this.index.close();
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
