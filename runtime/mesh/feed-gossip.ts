/**
 * The feeds' gossip rules, apart from any transport, disk or clock: what a
 * node says to each linked peer about feeds, and what it does with what it
 * hears (have, want, entries, and the broadcast tree's ihave, prune, graft).
 * The mesh (mesh.ts) runs it over MQTT links and the feed store on disk; the
 * simulation (test/sim) runs the same code over a simulated network and
 * clock, hundreds of nodes in one process.
 *
 * - New entries spread along the broadcast tree (broadcast-tree.ts): pushed
 *   on eager links up to maxHops, announced on lazy ones.
 * - Catch-up is pulled: a node that learns (hello, have) that a peer holds
 *   more of some origin wants it from that one peer only, so a healed
 *   partition costs about one copy of what is missing, not one per peer.
 * - Nothing waits in memory: what is not sent now is found again later from
 *   the have-vectors and the store.
 */
import type { Counters } from '../counters.js';
import type { NodeCertificate } from './certificate.js';
import { certificateToSend, messageBudget, splitIntoMessages } from './entry-batches.js';
import { certificateNodeId } from './certificate.js';
import { encodeEntry, entryHash, parseEntry, type FeedEntry } from './feed-entry.js';
import { applyEntries, collectBatch, decodeLines, type FeedLog } from './feed-sync.js';
import { BroadcastTree, type TreeScheduler } from './broadcast-tree.js';
import { answerSum, chunkRanges, HaveIndex, openSum, type SumRange } from './have-reconciliation.js';
import { LateStarts } from './late-start.js';
import type { MeshHeader } from './mesh-protocol.js';
import { MAX_UNKNOWN_ORIGINS_PER_PEER, OriginProbes, splitHave } from './peer-origins.js';
import { PeerTable, type PeerStatus, type PeerView } from './peer-table.js';
import type { LinkState } from './peer-link.js';
import { WantRateLimit } from './want-rate-limit.js';

export interface GossipSettings {
  maxHops: number;
  commitIntervalMs: number;
  batchBytes: number;
  antiEntropyMs: number;
  wantTimeoutMs: number;
  graftTimeoutMs?: number;
  announceDelayMs?: number;
  wantsPerSecond: number;
  wantBurst: number;
}

/** What the gossip asks of the node's trust (certificates, quarantine, clock). */
export interface GossipTrust {
  /** A certificate of `origin` is held: its entries can be checked. */
  known(origin: string): boolean;
  /** Why a verified entry is refused (counted as feeds.rejected.<reason>), or undefined to take it. */
  refusal(entry: FeedEntry): string | undefined;
  quarantined(origin: string): boolean;
  /** A certificate that came with entries; a refused one is counted, never thrown. */
  learn(cert: unknown): void;
  certificate(origin: string): NodeCertificate | undefined;
}

export interface GossipPorts {
  readonly self: string;
  readonly store: FeedLog;
  readonly counters: Counters;
  readonly settings: GossipSettings;
  readonly scheduler: TreeScheduler;
  readonly trust: GossipTrust;
  /** Sends on the link to `peer`; false if it is not up (the message is dropped). */
  send(peer: string, header: MeshHeader, lines?: readonly Buffer[]): boolean;
  /** Linked peers, and whether each link is up now. */
  links(): Iterable<readonly [string, boolean]>;
  /** Whether the link to `peer` is up now (asked on every message: cheaper than links()). */
  isUp(peer: string): boolean;
  /** Entries from peers, verified and stored in order, exactly once. */
  applied(entries: readonly FeedEntry[]): void;
  /** A `have` message stating `have` (default: all this node holds); the mesh adds its shared-state vector. */
  haveMessage(have?: Record<string, number>): MeshHeader;
  /** Verifies an entry's signature (feed-entry.ts verifyEntry); the simulation shares one answer per entry among its nodes. */
  verify?: (entry: FeedEntry) => FeedEntry;
  /** Whether `peer` said it holds `origin` sparsely (sparse-replication.ts): then a peer that holds it whole is asked first. */
  sparseAt?: (peer: string, origin: string) => boolean;
  /** `peer` was found to reconcile by ranges, or no longer to (reconciling-peers.ts keeps that across restarts). */
  reconciling?: (peer: string, reconciles: boolean) => void;
}

type EntriesHeader = Extract<MeshHeader, { t: 'entries' }>;

/** Entries missing before a push that are asked of its sender as a push again (repushGaps); more are caught up by wants. */
const MAX_REPUSHED_GAP = 8;

export class FeedGossip {
  private readonly peers = new PeerTable();
  private readonly lateStarts = new LateStarts();
  /** Origin -> the peer we asked for it, and when: one peer per origin at a time. */
  private readonly wants = new Map<string, { peer: string; at: number; id: number }>();
  private lastWantId = 0;
  private readonly wantLimit: WantRateLimit;
  private readonly probes: OriginProbes;
  /** Which links carry new entries whole (eager) and which only announce them (lazy). */
  private readonly tree: BroadcastTree;
  private haveTimer: (() => void) | undefined;
  /** Peers whose stated have-vector is to be acted on soon (onHave). */
  private readonly pulls = new Map<string, () => void>();
  private readonly graftTimeoutMs: number;
  /** Peers that reconcile have-vectors by ranges (they sent a `sum`): full have-vectors to them are replaced by sums. */
  private readonly reconciles = new Set<string>();
  /** Peers whose last hello no sum has followed yet: a node of this version sends one right after; an older one never does. */
  private readonly helloWithoutSum = new Set<string>();
  private readonly sumLimit: WantRateLimit;
  /** When each peer's hello came: what a reconciliation finds just after it is pulled at once (the link-up catch-up). */
  private readonly helloAt = new Map<string, number>();
  /** Per peer: a check that its wants were answered, one want timeout after one went out. */
  private readonly wantRetries = new Map<string, () => void>();
  /** Per peer: the second sum after a link-up, cancelled when the link goes down. */
  private readonly resums = new Map<string, () => void>();
  /** Origins caught up since the last have told the other peers (announceHaveSoon). */
  private readonly caughtUp = new Set<string>();
  private stopped = false;

  constructor(private readonly ports: GossipPorts) {
    const { settings, counters, scheduler } = ports;
    const now = () => scheduler.now();
    this.wantLimit = new WantRateLimit({ perSecond: settings.wantsPerSecond, burst: settings.wantBurst, now });
    this.sumLimit = new WantRateLimit({ perSecond: settings.wantsPerSecond, burst: settings.wantBurst, now });
    this.probes = new OriginProbes({ capacity: 4 * MAX_UNKNOWN_ORIGINS_PER_PEER, intervalMs: Math.max(settings.antiEntropyMs, settings.wantTimeoutMs), counters, now });
    this.graftTimeoutMs = settings.graftTimeoutMs ?? Math.max(1000, 5 * settings.commitIntervalMs);
    this.tree = new BroadcastTree({
      scheduler,
      graftTimeoutMs: this.graftTimeoutMs,
      announceDelayMs: settings.announceDelayMs ?? Math.max(20, settings.commitIntervalMs),
      head: (origin) => ports.store.head(origin).seq,
      sendAnnounce: (peer, have) => ports.send(peer, { t: 'ihave', have: { ...have } }),
      sendPrune: (peer, origins) => ports.send(peer, { t: 'prune', origins: [...origins] }),
      sendGraft: (peer, want) => ports.send(peer, { t: 'graft', want: { ...want } }),
      sendPull: (peer, want) => this.pullMissed(peer, want),
      count: (name, by) => counters.increment(name, by),
    });
  }

  /** What we hold of each feed (origin -> highest seq). */
  have(): Record<string, number> {
    return this.ports.store.have();
  }

  /** A link to `peer` exists (up or not yet): it is listed in status from now on. */
  linked(peer: string): void {
    this.peers.get(peer);
  }

  /** Our link to `peer` came up (our hello is on its way): it is eager on the tree, and told we speak the tree protocol. */
  linkUp(peer: string): void {
    const view = this.peers.get(peer);
    view.certsSent.clear();
    view.certsHeld.clear();
    view.stuck.clear();
    this.tree.peerUp(peer);
    this.ports.send(peer, { t: 'ihave', have: {} });
    // Also says we reconcile by ranges: an older node refuses it (counted) and keeps getting full have-vectors.
    this.openSum(peer);
    // Once more a want timeout later: a sum or answer lost on the way (a link that drops again) would otherwise
    // leave a difference unknown until the next anti-entropy round. Alike by then, it costs one message each way.
    this.resums.get(peer)?.();
    this.resums.set(peer, this.ports.scheduler.after(this.ports.settings.wantTimeoutMs, () => {
      this.resums.delete(peer);
      if (!this.stopped && this.ports.isUp(peer) && this.reconciling(peer)) this.openSum(peer);
    }));
  }

  /** The have-vector our hello to `peer` carries: empty for a peer that reconciles (the sum after it says the rest). */
  helloHave(peer: string): Record<string, number> {
    return this.reconciling(peer) ? {} : this.ports.store.have();
  }

  /**
   * Peers found to reconcile in an earlier run: our first hello to them after a restart carries no have-vector
   * either. One put back to an older version since is found as in a run (its hello has no sum after it).
   */
  rememberReconciling(peers: Iterable<string>): void {
    for (const peer of peers) this.reconciles.add(peer);
  }

  /** Whether `peer` reconciles by ranges: it sent a sum, and no hello since without one (a node put back to an older version). */
  private reconciling(peer: string): boolean {
    if (this.helloWithoutSum.has(peer) && this.reconciles.delete(peer)) this.ports.reconciling?.(peer, false);
    return this.reconciles.has(peer);
  }

  /** Anti-entropy: what we hold, to `peer`, as a sum if it reconciles, else as a full have-vector. */
  sayHave(peer: string): void {
    if (!this.reconciling(peer)) {
      this.ports.send(peer, this.ports.haveMessage());
      return;
    }
    this.ports.send(peer, this.ports.haveMessage({})); // the shared-state vector
    this.openSum(peer);
  }

  /** A peer's ranges (have-reconciliation.ts): take what it told, answer what differs, pull what we lack. */
  onSum(from: string, ranges: readonly SumRange[]): void {
    const { counters, store } = this.ports;
    if (!this.reconciles.has(from)) {
      this.reconciles.add(from);
      this.ports.reconciling?.(from, true);
    }
    this.helloWithoutSum.delete(from);
    // Each sum costs a sort of what we hold: slowed as wants are.
    if (!this.admits(from, this.sumLimit, 'sum')) return;
    const index = new HaveIndex(store.have());
    const { reply, learned, equal, bad } = answerSum(index, ranges);
    if (bad > 0) counters.increment('mesh.rejected.sum_range', bad);
    // Where both hold alike, the peer holds what we hold: known without a byte more.
    const stated: Record<string, number> = {};
    for (const [fromIndex, to] of equal) Object.assign(stated, index.items(fromIndex, to));
    Object.assign(stated, learned);
    if (Object.keys(stated).length > 0) this.takeHave(from, stated);
    this.sendSum(from, reply);
    if (!Object.entries(learned).some(([origin, seq]) => seq > store.head(origin).seq)) return;
    // Just after a hello this is the link-up catch-up: pulled at once. Later (the second sum after a link-up, anti-entropy)
    // what differs may be on its way down the tree, which gets a graft timeout to bring or graft it first.
    const sinceHello = this.ports.scheduler.now() - (this.helloAt.get(from) ?? Number.NEGATIVE_INFINITY);
    if (sinceHello < Math.min(this.graftTimeoutMs, this.ports.settings.wantTimeoutMs / 2)) this.requestMissing(from);
    else this.pullSoon(from);
  }

  /** Opens a reconciliation: our whole key space, described. */
  private openSum(peer: string): void {
    this.sendSum(peer, openSum(new HaveIndex(this.ports.store.have())));
  }

  /**
   * Whether a request from `from` that costs us work (a want, sum or graft) is answered: only over a link that is up
   * (the answer goes out on it), and within the peer's rate. Refusals are counted as mesh.rejected.<kind>_no_link / _rate.
   */
  private admits(from: string, limit: WantRateLimit, kind: string, countNoLink = true): boolean {
    if (!this.ports.isUp(from)) {
      if (countNoLink) this.ports.counters.increment(`mesh.rejected.${kind}_no_link`);
      return false;
    }
    if (!limit.take(from)) {
      this.ports.counters.increment(`mesh.rejected.${kind}_rate`);
      return false;
    }
    return true;
  }

  private sendSum(peer: string, ranges: readonly SumRange[]): void {
    for (const part of chunkRanges(ranges)) this.ports.send(peer, { t: 'sum', ranges: part });
  }

  linkDown(peer: string): void {
    this.helloAt.delete(peer);
    this.resums.get(peer)?.();
    this.resums.delete(peer);
    this.wantRetries.get(peer)?.();
    this.wantRetries.delete(peer);
    this.pulls.get(peer)?.();
    this.pulls.delete(peer);
    for (const [origin, want] of this.wants) if (want.peer === peer) this.wants.delete(origin);
    this.lateStarts.forgetPeer(peer);
    this.tree.peerDown(peer);
  }

  /** A message from a peer whose certificate we hold: it is alive. */
  heard(peer: string): void {
    this.peers.get(peer).lastSeen = this.ports.scheduler.now();
  }

  hasPeer(peer: string): boolean {
    return this.peers.has(peer);
  }

  announced(peer: string, value: string): void {
    this.peers.announce(peer, value);
  }

  /** A peer's hello: what it holds now replaces what we thought; we say what we hold, and ask for what we lack. */
  onHello(from: string, have: Record<string, number>): void {
    const view = this.peers.get(from);
    view.have = {};
    view.certsHeld.clear();
    view.stuck.clear();
    this.takeHave(from, have);
    this.helloAt.set(from, this.ports.scheduler.now());
    // Our hello may have gone while their link to us was down: say what we hold, so they can answer too. A peer that
    // reconciles opened a sum after its hello: our answer to it tells it what we hold, so only our shared-state vector goes.
    const reconciling = this.reconciles.has(from);
    this.helloWithoutSum.add(from);
    if (reconciling) this.ports.send(from, this.ports.haveMessage({}));
    else this.ports.send(from, this.ports.haveMessage());
    this.requestMissing(from);
  }

  onHave(from: string, header: Extract<MeshHeader, { t: 'have' }>): void {
    this.takeHave(from, header.have);
    if (header.answers !== undefined) {
      // A sparse holder that holds nothing of what we wanted would say so again: not asked for it until its have moves.
      for (const [origin, want] of this.wants) if (want.peer === from && want.id <= header.answers && this.ports.sparseAt?.(from, origin)) this.peers.get(from).stuck.add(origin);
      this.answered(from, header.answers);
      this.requestMissing(from);
      return;
    }
    this.pullSoon(from);
  }

  /**
   * What `from` holds beyond us may be on its way down the tree: pulled only if still missing a graft timeout later.
   * (Pulled at once, every entry in flight would be fetched twice, and each answer's have would set off more.)
   */
  private pullSoon(from: string): void {
    if (this.pulls.has(from)) return;
    this.pulls.set(from, this.ports.scheduler.after(this.graftTimeoutMs, () => {
      this.pulls.delete(from);
      if (!this.stopped) this.requestMissing(from);
    }));
  }

  onIHave(from: string, have: Record<string, number>): void {
    // Only origins whose certificates we hold: the others come by anti-entropy, with their certificates.
    // Not taken into the peer's have-vector: that would make the next message from it pull at once what the tree is about to push.
    const { known } = splitHave(have, (origin) => this.ports.trust.known(origin), this.ports.counters);
    this.tree.onAnnounce(from, known);
  }

  onPrune(from: string, origins: readonly string[]): void {
    this.tree.onPrune(from, origins);
  }

  async onGraft(from: string, want: Record<string, number>): Promise<void> {
    this.tree.onGraft(from, Object.keys(want));
    await this.answerGraft(from, want);
  }

  /** Our own entries, durable now: along the tree. */
  spreadOwn(entries: readonly FeedEntry[]): void {
    this.forward(entries, 0, undefined);
  }

  async onEntries(from: string, header: EntriesHeader, lines: readonly Buffer[]): Promise<void> {
    const { counters, store, trust } = this.ports;
    for (const cert of header.certs) trust.learn(cert);
    const duplicated = new Set<string>();
    const entries = decodeLines(lines, counters, (entry) => trust.refusal(entry), (entry) => {
      const known = store.recentHash(entry.origin, entry.seq);
      if (known === undefined || known !== entryHash(entry)) return false;
      store.countDuplicate();
      if (!header.reply) duplicated.add(entry.origin);
      this.peers.raise(from, entry.origin, entry.seq);
      return true;
    }, this.ports.verify);
    const view = this.peers.get(from);
    for (const entry of entries) {
      this.peers.raise(from, entry.origin, entry.seq);
      view.certsHeld.add(entry.origin); // it sent them: it holds their certificate
    }
    // A feed this node holds nothing of starts late only once every other linked holder was heard (late-start.ts).
    const admitted = this.lateStarts.admit(from, header.starts, entries, (origin) => store.head(origin).seq > 0, (origin, seq) => this.holdersOf(origin, seq, from));
    if (admitted.deferred.length > 0) {
      counters.increment('feeds.late_start_deferred', admitted.deferred.length);
      for (const origin of admitted.deferred) for (const holder of this.holdersOf(origin, 1, from)) this.requestMissing(holder);
    }
    const { outcome, applied, refused, duplicated: raced } = await applyEntries(store, admitted.entries, admitted.starts);
    // Entries checked while the same ones from another path were being stored are duplicates too (a loaded board sees it often).
    if (!header.reply) for (const origin of raced) duplicated.add(origin);
    // Over a replication budget here: asking this peer again gets the same answer until it has more.
    for (const origin of refused) view.stuck.add(origin);
    for (const entry of applied) this.lateStarts.started(entry.origin);
    if (applied.length > 0) this.ports.applied(applied);
    if (header.reply) {
      if (header.answers !== undefined && header.answers === view.probing?.id) this.releaseCutOffProbes(view.probing.origins, lines);
      if (header.answers !== undefined) this.answered(from, header.answers);
      else for (const entry of entries) if (this.wants.get(entry.origin)?.peer === from) this.wants.delete(entry.origin);
      if (outcome.gap > 0) {
        // The peer sent what it holds and it still does not join ours: both sides dropped the entries in between.
        counters.increment('mesh.unrecoverable_gaps', outcome.gap);
        applied.push(...await this.resumeAfterGap(from, admitted.starts, header.starts, entries));
        for (const entry of entries) if (store.head(entry.origin).seq < entry.seq - 1) this.peers.get(from).stuck.add(entry.origin);
      }
      if (applied.length > 0) this.announceHaveSoon(applied);
      this.requestMissing(from); // the rest of a catch-up, batch by batch
    } else {
      if (applied.length > 0) this.forward(applied, header.hops + 1, from);
      // Pushed, and already here: for those origins this link is a redundant path of the tree.
      if (duplicated.size > 0) this.tree.duplicate(from, [...duplicated].filter((origin) => !applied.some((e) => e.origin === origin)));
      // Only a gap is asked for at once: what peers said they hold is on its way down the tree (or grafted, or found by anti-entropy).
      if (outcome.gap > 0) {
        this.repushGaps(from, entries);
        this.requestMissing(from);
      }
    }
  }

  /**
   * A push that does not join what we hold: the tree lost the entries before it on the way here, and every node below
   * us missed them too. A few are asked of the pusher again as a push (a `graft` of a link already eager), which goes
   * on down the tree: pulled by a want, its answer would stop here, and each node below would pull or graft for itself.
   * A longer gap (a node far behind, a heal) is caught up by wants, batch by batch.
   */
  private repushGaps(from: string, entries: readonly FeedEntry[]): void {
    if (!this.tree.knows(from)) return; // an older node ignores a graft: wanted, as before
    const first: Record<string, number> = {};
    for (const e of entries) if (e.seq < (first[e.origin] ?? Infinity)) first[e.origin] = e.seq;
    const now = this.ports.scheduler.now();
    const want: Record<string, number> = {};
    for (const [origin, seq] of Object.entries(first)) {
      const head = this.ports.store.head(origin).seq;
      if (head >= seq - 1 || seq - 1 - head > MAX_REPUSHED_GAP || this.wantPending(origin, now)) continue;
      want[origin] = head + 1;
    }
    if (Object.keys(want).length === 0 || !this.ports.send(from, { t: 'graft', want })) return;
    this.ports.counters.increment('mesh.tree.repushes');
    // Not asked again by a want until the push is overdue.
    this.noteWants(from, Object.keys(want), now, ++this.lastWantId);
  }

  async onWant(from: string, want: Record<string, number>, id: number | undefined): Promise<void> {
    const { counters, settings, store } = this.ports;
    // The answer goes out on our link to the peer: without one, build nothing (finding 11).
    if (!this.admits(from, this.wantLimit, 'want')) return;
    const batch = await collectBatch(store, want, messageBudget(this.certificatesFor(from), settings.batchBytes));
    if (batch.entries.length === 0) {
      // We do not have it (any more): say how far we hold what was asked (not all we hold: that grows with the mesh).
      const heads = Object.fromEntries(Object.keys(want).map((origin) => [origin, store.head(origin).seq]));
      this.ports.send(from, { t: 'have', have: heads, ...(id !== undefined ? { answers: id } : {}) });
      return;
    }
    this.sendEntries(from, batch.entries, { hops: 0, reply: true, starts: batch.starts, ...(id !== undefined ? { answers: id } : {}) });
    counters.increment('mesh.catchup_entries_sent', batch.entries.length);
    counters.increment('mesh.catchup_bytes_sent', batch.bytes);
  }

  /** Each peer: link, liveness, and what each side lacks. */
  peerStatus(describe: (id: string) => { name?: string; link?: { state: LinkState; url: string; lastError: string | undefined } }): PeerStatus[] {
    return this.peers.status(this.ports.store.have(), describe);
  }

  treeStatus(): ReturnType<BroadcastTree['status']> {
    return this.tree.status();
  }

  /** One origin's tree over the links up now. */
  treeOf(origin: string): { eager: string[]; lazy: string[] } {
    return this.tree.treeOf(origin, this.upLinks());
  }

  private upLinks(): string[] {
    const up: string[] = [];
    for (const [id, isUp] of this.ports.links()) if (isUp) up.push(id);
    return up;
  }

  stop(): void {
    this.stopped = true;
    this.tree.stop();
    this.haveTimer?.();
    this.haveTimer = undefined;
    for (const cancel of this.pulls.values()) cancel();
    this.pulls.clear();
    for (const cancel of [...this.resums.values(), ...this.wantRetries.values()]) cancel();
    this.resums.clear();
    this.wantRetries.clear();
  }

  // ---- rules -------------------------------------------------------------

  /** A graft: the peer's tree lost it these entries; they are pushed (not a reply: it spreads them on). Rate-limited as wants are. */
  private async answerGraft(from: string, want: Record<string, number>): Promise<void> {
    const { counters, settings, store } = this.ports;
    if (!this.admits(from, this.wantLimit, 'graft', false)) return;
    const batch = await collectBatch(store, want, messageBudget(this.certificatesFor(from), settings.batchBytes));
    if (batch.entries.length === 0) return;
    this.sendEntries(from, batch.entries, { hops: 0, reply: false, starts: batch.starts });
    counters.increment('mesh.tree.graft_entries_sent', batch.entries.length);
  }

  /**
   * A feed held here that the peer can continue only past a gap (its
   * `starts`: it holds nothing earlier, e.g. a sparse node whose relay cache
   * dropped them) continues there once every other linked holder claimed no
   * earlier start either (late-start.ts), so no reachable entry is skipped.
   * The skipped ones are counted (feeds.resumed_skipped).
   */
  private async resumeAfterGap(from: string, started: Readonly<Record<string, number>>, starts: Readonly<Record<string, number>>, entries: readonly FeedEntry[]): Promise<FeedEntry[]> {
    const resumed: FeedEntry[] = [];
    for (const [origin, seq] of Object.entries(starts)) {
      if (started[origin] !== undefined || seq <= this.ports.store.head(origin).seq + 1) continue;
      if (!this.lateStarts.claim(origin, from, seq, this.holdersOf(origin, seq, from))) continue;
      this.lateStarts.started(origin);
      const { applied } = await applyEntries(this.ports.store, entries.filter((e) => e.origin === origin), { [origin]: seq });
      resumed.push(...applied);
    }
    if (resumed.length > 0) this.ports.applied(resumed);
    return resumed;
  }

  /** Linked peers (but `except`) that advertise `origin` up to at least `seq`. */
  private holdersOf(origin: string, seq: number, except: string): string[] {
    const out: string[] = [];
    for (const [id, up] of this.ports.links()) {
      const view = this.peers.get(id);
      // A claim made before we held the origin's certificate (view.unknown) counts too: it is known by now.
      const stated = Math.max(view.have[origin] ?? 0, view.unknown[origin] ?? 0);
      if (id !== except && up && stated >= seq && !view.stuck.has(origin)) out.push(id);
    }
    return out;
  }

  /**
   * A reply to want `id` came: every origin asked of that peer up to it is
   * free to be asked again. Origins a full batch cut off are then re-asked at
   * once, rather than after wantTimeoutMs; origins asked later stay asked.
   */
  private answered(peerId: string, id: number): void {
    for (const [origin, want] of this.wants) if (want.peer === peerId && want.id <= id) this.wants.delete(origin);
  }

  /**
   * The tree missed these entries once (broadcast-tree.ts): a want to the peer that announced them, for the origins
   * no want is out for yet. Its answer is a reply: stored here, not pushed on (the nodes below missed it too and pull
   * it themselves), so no link carries it twice.
   */
  private pullMissed(peerId: string, want: Readonly<Record<string, number>>): void {
    const now = this.ports.scheduler.now();
    const asked = Object.entries(want).filter(([origin]) => !this.wantPending(origin, now));
    if (asked.length === 0) return;
    const id = ++this.lastWantId;
    if (!this.ports.send(peerId, { t: 'want', want: Object.fromEntries(asked), id })) return;
    this.noteWants(peerId, asked.map(([origin]) => origin), now, id);
  }

  /** Whether a want (or repush) for `origin` went out less than a want timeout ago: nobody else is asked for it meanwhile. */
  private wantPending(origin: string, now: number): boolean {
    const out = this.wants.get(origin);
    return out !== undefined && now - out.at < this.ports.settings.wantTimeoutMs;
  }

  /** Records that `peer` was asked for these origins now (request `id`). */
  private noteWants(peer: string, origins: readonly string[], now: number, id: number): void {
    for (const origin of origins) this.wants.set(origin, { peer, at: now, id });
  }

  /** Asks `peer` for what it holds beyond our heads, for origins nobody else is already sending. */
  requestMissing(peerId: string): void {
    if (!this.peers.has(peerId) || !this.ports.isUp(peerId)) return;
    const { store, trust, settings } = this.ports;
    const view = this.peers.get(peerId);
    // Origins it named whose certificates have come since (with their entries): now known, their stated seqs count.
    const nowKnown = Object.fromEntries(Object.entries(view.unknown).filter(([origin]) => trust.known(origin)));
    for (const origin of Object.keys(nowKnown)) delete view.unknown[origin];
    this.peers.mergeHave(peerId, nowKnown);
    const now = this.ports.scheduler.now();
    const want: Record<string, number> = {};
    for (const [origin, seq] of Object.entries(view.have)) {
      const head = store.head(origin).seq;
      if (seq <= head || view.stuck.has(origin) || trust.quarantined(origin)) continue;
      if (this.wantPending(origin, now)) continue;
      const asked = this.wants.get(origin); // timed out: its peer did not answer
      if (asked && head === 0) this.lateStarts.noAnswer(origin, asked.peer);
      if (head === 0 && this.lateStarts.askOthersFirst(origin, peerId, this.holdersOf(origin, 1, peerId))) continue;
      if (this.ports.sparseAt?.(peerId, origin) && this.holdersOf(origin, head + 1, peerId).some((p) => !this.ports.sparseAt?.(p, origin))) continue;
      want[origin] = head + 1;
    }
    const asked = Object.keys(want);
    // Origins it holds that we have no certificate for: a few, now and then (peer-origins.ts); their entries bring the certificate.
    const probed = this.probes.pick(Object.keys(view.unknown));
    for (const origin of probed) want[origin] = store.head(origin).seq + 1;
    if (Object.keys(want).length === 0) return;
    // Only a want that went out blocks asking another peer for the same origin.
    const id = ++this.lastWantId;
    if (!this.ports.send(peerId, { t: 'want', want, id })) return this.probes.release(probed);
    this.noteWants(peerId, asked, now, id);
    if (probed.length > 0) view.probing = { id, origins: probed };
    // A want or its answer lost on the way (a link that dropped): asked again once it times out, not at the next anti-entropy round.
    if (asked.length > 0 && !this.wantRetries.has(peerId)) {
      this.wantRetries.set(peerId, this.ports.scheduler.after(settings.wantTimeoutMs + 1, () => {
        this.wantRetries.delete(peerId);
        if (!this.stopped) this.requestMissing(peerId);
      }));
    }
  }

  /**
   * New entries along their origins' trees: pushed on eager links, announced
   * on lazy ones. No hop limit: only entries new here are passed on, so each
   * goes over each link at most once, and a spanning tree is often deeper
   * than the mesh's diameter (a limit would cut it, and grafts would churn).
   */
  private forward(entries: readonly FeedEntry[], hops: number, except: string | undefined): void {
    const push = this.tree.spread(entries, except, this.upLinks());
    for (const [peerId, indices] of push) {
      const view = this.peers.get(peerId);
      const fresh = indices.map((i) => entries[i] as FeedEntry).filter((e) => e.origin !== peerId && (view.have[e.origin] ?? 0) < e.seq);
      if (fresh.length > 0) this.sendEntries(peerId, fresh, { hops: Math.min(hops, 255), reply: false, starts: {} });
    }
  }

  /** Sends entries in as many messages as the peer's limits need (entry-batches.ts); a reply's `answers` goes with the last. */
  private sendEntries(peerId: string, entries: readonly FeedEntry[], meta: { hops: number; reply: boolean; starts: Record<string, number>; answers?: number }): void {
    const view = this.peers.get(peerId);
    const now = this.ports.scheduler.now();
    const certOf = this.certificatesFor(peerId);
    const messages = splitIntoMessages(entries, messageBudget(certOf, this.ports.settings.batchBytes));
    for (const [i, part] of messages.entries()) {
      const origins = [...new Set(part.map((e) => e.origin))];
      const certs = origins.flatMap((origin) => certOf(origin) ?? []);
      const starts = Object.fromEntries(Object.entries(meta.starts).filter(([origin]) => origins.includes(origin)));
      const { answers, ...rest } = meta;
      const last = i === messages.length - 1;
      if (!this.ports.send(peerId, { t: 'entries', ...rest, starts, certs, ...(last && answers !== undefined ? { answers } : {}) }, part.map(encodeEntry))) return;
      for (const cert of certs) view.certsSent.set(certificateNodeId(cert), now);
      for (const e of part) this.peers.raise(peerId, e.origin, e.seq);
    }
  }

  /** Probed origins after the last one a full answer reached (collectBatch goes in origin order) may be asked again at once. */
  private releaseCutOffProbes(origins: readonly string[], lines: readonly Buffer[]): void {
    let last: string | undefined;
    try {
      last = lines.length > 0 ? parseEntry(lines[lines.length - 1] as Buffer).origin : undefined;
    } catch {
      return; // counted where the lines are decoded
    }
    if (last !== undefined) this.probes.release(origins.filter((origin) => origin > last));
  }

  /** Which certificate (if any) a message to `peerId` carries for an origin (entry-batches.ts). */
  private certificatesFor(peerId: string): (origin: string) => NodeCertificate | undefined {
    const view: PeerView = this.peers.get(peerId);
    const now = this.ports.scheduler.now();
    return (origin) => certificateToSend(view, origin, this.ports.trust.certificate(origin), now, this.ports.settings.wantTimeoutMs);
  }

  /** A have-vector the peer stated: origins we hold certificates for are kept, a bounded few others are candidates to ask for. */
  private takeHave(from: string, have: Record<string, number>): void {
    const stated = splitHave(have, (origin) => this.ports.trust.known(origin), this.ports.counters);
    this.peers.mergeHave(from, stated.known);
    this.peers.get(from).unknown = stated.unknown;
  }

  /**
   * After catching up, tell the peers (debounced): they may lack the same
   * entries. Only the origins caught up on, so bytes follow the catch-up;
   * to every peer, the one we caught up from too (it learns what we got from
   * others in the same window, which no later full have-vector would tell it).
   */
  private announceHaveSoon(applied: readonly FeedEntry[]): void {
    for (const entry of applied) this.caughtUp.add(entry.origin);
    if (this.haveTimer) return;
    this.haveTimer = this.ports.scheduler.after(250, () => {
      this.haveTimer = undefined;
      if (this.stopped) return;
      const heads = Object.fromEntries([...this.caughtUp].map((origin) => [origin, this.ports.store.head(origin).seq]));
      this.caughtUp.clear();
      const have = this.ports.haveMessage(heads);
      for (const [peer] of this.ports.links()) this.ports.send(peer, have);
    });
  }

}
