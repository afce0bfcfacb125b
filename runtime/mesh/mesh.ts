/**
 * The mesh: this node's feeds, its links to neighbours and the shared state,
 * and the rules that make every node end with every entry exactly once.
 *
 * - Own entries are signed, appended, and made durable (group commit every
 *   commitInterval) before they leave the node: a power cut can then never
 *   make this node sign a second history for a seq a peer already holds.
 * - New entries spread along an epidemic broadcast tree (broadcast-tree.ts):
 *   pushed whole on eager links, announced on lazy ones, up to maxHops; a
 *   redundant path is pruned, a lost one grafted back; a peer known to hold
 *   an entry is skipped.
 * - Catch-up is pulled: a node that learns (hello, have) that a peer holds
 *   more of some origin wants it from that one peer only, so a healed
 *   partition costs about one copy of what is missing, not one per peer.
 * - Nothing waits in memory: what is not sent now is found again later from
 *   the have-vectors and the disk (anti-entropy every antiEntropyInterval).
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { EmbeddedBroker, InProcessDeliver } from '../broker/embedded-broker.js';
import { Counters } from '../counters.js';
import { ApiaryError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { certificateNodeId, type NodeCertificate, type TrustPolicy } from './certificate.js';
import { encodeEntry, entryHash, parseEntry, signEntry, type FeedEntry } from './feed-entry.js';
import { certificateToSend, messageBudget, splitIntoMessages } from './entry-batches.js';
import { FeedStore, type FeedStats } from './feed-store.js';
import { ForkGossip, Quarantine } from './fork-proofs.js';
import { applyEntries, collectBatch, decodeLines } from './feed-sync.js';
import { HybridLogicalClock } from './hybrid-logical-clock.js';
import { LateStarts } from './late-start.js';
import { MemberDirectory, refusalCounter } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import { decodeMeshMessage, encodeMeshMessage, meshSender, type MeshHeader } from './mesh-protocol.js';
import { DiscoveryCandidates, MdnsDiscovery, type DiscoveredPeer } from './mdns-discovery.js';
import { verifyLinkProof } from './link-token.js';
import type { PeerAddress } from './mesh-access.js';
import { advertisedListener, dialBackTarget } from './neighbour-addresses.js';
import { PeerLink, type PinnedCertificate } from './peer-link.js';
import { MAX_UNKNOWN_ORIGINS_PER_PEER, OriginProbes, splitHave } from './peer-origins.js';
import { PeerTable, type PeerStatus } from './peer-table.js';
import { openPrivateEntry, PRIVATE_ENTRY_TYPE, sealPrivateBody } from './private-entries.js';
import { canonicalJson } from '../canonical-json.js';
import { BlobTransfer } from './blob-transfer.js';
import { BroadcastTree } from './broadcast-tree.js';
import { SharedState, type JsonValue } from './shared-state.js';
import { noteLegacySharedState, SharedDocument, type SharedStateRules } from './shared-state-rules.js';
import { SharedStateBudget } from './shared-state-budget.js';
import { WantRateLimit } from './want-rate-limit.js';

export { PRIVATE_ENTRY_TYPE } from './private-entries.js';

export interface MeshSettings {
  neighbours: readonly { url: string; nodeId: string; pinnedCertificate?: PinnedCertificate }[];
  /** Link back to a trusted node that linked to us unasked. */
  dialBack: boolean;
  discovery: { mdns: boolean; interface: string | undefined; port: number };
  maxHops: number;
  commitIntervalMs: number;
  batchBytes: number;
  antiEntropyMs: number;
  wantTimeoutMs: number;
  maxBytesPerOrigin: number;
  maxAgeMs: number;
  segmentBytes: number;
  budgets: MeshBudgets;
  backoff: { initialMs: number; maxMs: number };
  /** How far ahead of our clock a certificate (or link token) may be dated. */
  maxSkewMs?: number;
  /** How long a neighbour's broker has to prove its node key on a new link. */
  linkProofTimeoutMs?: number;
  /** Entries and shared-state ops stamped further ahead of our clock are refused. */
  clockSkewMs: number;
  /** Broadcast tree (broadcast-tree.ts): how long an announced entry may take on the tree before its announcer is grafted; default 5 commit intervals, at least 1 s. */
  graftTimeoutMs?: number;
  /** How long announcements to a lazy peer are gathered; default one commit interval. */
  announceDelayMs?: number;
  sharedState: SharedStateRules;
}

/** mesh.budgets: what trusted peers may make this node hold or do (replication-budget.ts, want-rate-limit.ts, shared-state-budget.ts). */
export interface MeshBudgets {
  originsPerOwner: number;
  maxFeedBytes: number;
  sharedKeys: number;
  sharedBytes: number;
  wantsPerSecond: number;
  wantBurst: number;
  /** Blob chunk requests answered per peer and second, with this burst (blob-transfer.ts). */
  blobChunksPerSecond: number;
  blobChunkBurst: number;
}

export interface MeshOptions {
  settings: MeshSettings;
  dataDir: string;
  identity: MeshIdentity;
  trust: TrustPolicy;
  /** Node id -> address its link to our broker came from (kept by the broker's access policy). */
  peerAddresses: ReadonlyMap<string, PeerAddress>;
  /** The broker's memory of accepted link tokens: flushed at stop. */
  replays?: { stop(): Promise<void> };
  prefix: string;
  counters: Counters;
  logger: Logger;
}

export interface MeshEvents {
  /** A new entry from another origin, applied (verified, in order, exactly once). */
  entry: [entry: FeedEntry];
  /** A private entry sealed for this node, opened. */
  private: [message: { origin: string; seq: number; type: string; body: unknown }];
  /** A direct contract-net message from a trusted, linked peer (lossy: not stored, not forwarded). */
  task: [from: string, line: Buffer];
}

export class Mesh extends EventEmitter<MeshEvents> {
  readonly store: FeedStore;
  readonly directory: MemberDirectory;
  /** Origins proven to have forked (fork-proofs.ts): refused here and on every node the proof reaches. */
  readonly quarantine: Quarantine;
  private readonly forks: ForkGossip;
  /** The raw Yjs document (a set of signed ops); read it through `shared`. */
  readonly state: SharedState;
  /** The shared document as this node reads and writes it: signed edits, checked against the write rules. */
  readonly shared: SharedDocument;
  /** Files moved between neighbours in checked chunks (blob-transfer.ts): serve, unserve, fetch. */
  readonly blobs: BlobTransfer;
  /** Which links carry new entries whole (eager) and which only announce them (lazy). */
  private readonly tree: BroadcastTree;
  private readonly hlc: HybridLogicalClock;
  private readonly links = new Map<string, PeerLink>();
  private readonly peers = new PeerTable();
  private readonly lateStarts = new LateStarts();
  /** Origin -> the peer we asked for it, and when: one peer per origin at a time. */
  private readonly wants = new Map<string, { peer: string; at: number; id: number }>();
  private lastWantId = 0;
  private readonly wantLimit: WantRateLimit;
  private readonly probes: OriginProbes;
  private ownQueue: Promise<unknown> = Promise.resolve();
  private uncommitted: FeedEntry[] = [];
  private commitTimer: NodeJS.Timeout | undefined;
  private haveTimer: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private deliver: InProcessDeliver | undefined;
  private liveness: InProcessDeliver | undefined;
  private running = false;
  private broker: EmbeddedBroker | undefined;
  private discovery: MdnsDiscovery | undefined;
  private readonly candidates = new DiscoveryCandidates();

  constructor(private readonly options: MeshOptions) {
    super();
    const dir = path.join(options.dataDir, 'mesh');
    const { settings, counters } = options;
    const { budgets } = settings;
    this.store = new FeedStore({
      dir: path.join(dir, 'feeds'), counters, segmentBytes: settings.segmentBytes, maxBytesPerOrigin: settings.maxBytesPerOrigin, maxAgeMs: settings.maxAgeMs,
      onFork: (held, received) => this.forks.found(held, received),
      self: this.nodeId, ownerOf: (origin) => this.directory.get(origin)?.owner, budget: budgets,
    });
    this.wantLimit = new WantRateLimit({ perSecond: budgets.wantsPerSecond, burst: budgets.wantBurst });
    this.probes = new OriginProbes({ capacity: 4 * MAX_UNKNOWN_ORIGINS_PER_PEER, intervalMs: Math.max(settings.antiEntropyMs, settings.wantTimeoutMs), counters });
    this.quarantine = new Quarantine({ file: path.join(dir, 'quarantine.json'), counters });
    this.directory = new MemberDirectory({ file: path.join(dir, 'members.json'), policy: options.trust, counters, self: options.identity.certificate, maxSkewMs: settings.maxSkewMs });
    this.forks = new ForkGossip({
      quarantine: this.quarantine, directory: this.directory, counters, logger: options.logger, maxHops: settings.maxHops,
      peers: () => this.links.keys(), send: (peerId, header, lines) => this.send(peerId, header, lines),
    });
    this.hlc = new HybridLogicalClock(() => Date.now(), settings.clockSkewMs);
    this.tree = new BroadcastTree({
      scheduler: { now: () => Date.now(), after: (ms, fn) => { const t = setTimeout(fn, ms); t.unref(); return () => clearTimeout(t); } },
      graftTimeoutMs: settings.graftTimeoutMs ?? Math.max(1000, 5 * settings.commitIntervalMs),
      announceDelayMs: settings.announceDelayMs ?? Math.max(20, settings.commitIntervalMs),
      head: (origin) => this.store.head(origin).seq,
      sendAnnounce: (peer, have) => this.send(peer, { t: 'ihave', have: { ...have } }),
      sendPrune: (peer) => this.send(peer, { t: 'prune' }),
      sendGraft: (peer, want) => this.send(peer, { t: 'graft', want: { ...want } }),
      count: (name, by) => counters.increment(name, by),
    });
    this.state = new SharedState({
      dir: path.join(dir, 'state-v2'), counters, segmentBytes: settings.segmentBytes,
      admit: (doc, update) => this.shared.admit(doc, update), budget: new SharedStateBudget(budgets, counters),
    });
    this.shared = new SharedDocument({
      state: this.state, identity: options.identity.node, directory: this.directory, owner: options.identity.certificate.owner,
      rules: settings.sharedState, clock: () => this.hlc.now(), maxAheadMs: settings.clockSkewMs, now: () => Date.now(), counters,
      quarantined: (origin) => this.quarantine.has(origin),
    });
    this.blobs = new BlobTransfer({
      counters, logger: options.logger, budget: { chunksPerSecond: budgets.blobChunksPerSecond, chunkBurst: budgets.blobChunkBurst },
      peers: () => [...this.links].filter(([id, link]) => link.state === 'up' && this.directory.get(id) !== undefined).map(([id]) => id),
      linked: (peerId) => this.links.get(peerId)?.state === 'up',
      send: (peerId, header, lines) => this.send(peerId, header, lines),
    });
  }

  private opened: Promise<void> | undefined;

  get nodeId(): string {
    return this.options.identity.node.nodeId;
  }

  /**
   * Opens the local state (members, feeds, shared document) without going on
   * the network: the node's extensions can then read it and listen for
   * entries before the first one arrives. `start` calls it if not called.
   */
  open(): Promise<void> {
    this.opened ??= (async () => {
      await mkdir(path.join(this.options.dataDir, 'mesh', 'state-v2'), { recursive: true });
      await noteLegacySharedState(path.join(this.options.dataDir, 'mesh', 'state'), this.options.logger, this.options.counters);
      await this.directory.start();
      await this.quarantine.start();
      await this.store.open();
      await this.state.start();
    })();
    return this.opened;
  }

  /** Starts on the node's own broker: neighbours' messages to us arrive there. */
  async start(broker: EmbeddedBroker): Promise<void> {
    const { prefix, settings } = this.options;
    this.broker = broker;
    await this.open();
    this.state.on('update', (update, from) => { if (from === 'local') this.broadcast({ t: 'state', update: Buffer.from(update).toString('base64'), hops: 0 }); });
    // This node's member record in the shared document: written when it changes (a new name, key or owner).
    const cert = this.options.identity.certificate;
    const record: JsonValue = { name: cert.name, owner: cert.owner, key: cert.node, box: cert.box };
    if (canonicalJson(this.shared.get('members', this.nodeId)) !== canonicalJson(record)) await this.shared.set('members', this.nodeId, record);
    this.running = true;
    this.deliver = (packet, done) => {
      const from = meshSender(prefix, packet.topic, this.nodeId);
      if (from && from !== this.nodeId && this.running) this.track(this.onMessage(from, Buffer.from(packet.payload)));
      done();
    };
    await broker.subscribe(`${prefix}/+/mesh/to/${this.nodeId}`, this.deliver);
    this.liveness = (packet, done) => {
      const id = packet.topic.split('/')[1] ?? '';
      if (id !== this.nodeId && this.peers.has(id)) this.peers.announce(id, Buffer.from(packet.payload).toString('utf8').slice(0, 16));
      done();
    };
    await broker.subscribe(`${prefix}/+/state`, this.liveness);
    for (const neighbour of settings.neighbours) this.link(neighbour.url, neighbour.nodeId, neighbour.pinnedCertificate);
    if (settings.discovery.mdns) {
      const listener = advertisedListener(broker);
      this.discovery = new MdnsDiscovery({
        nodeId: this.nodeId, owner: this.options.identity.certificate.owner, brokerPort: listener.port, tls: listener.tls,
        interface: settings.discovery.interface, mdnsPort: settings.discovery.port,
        onFound: (peer) => this.onDiscovered(peer), counters: this.options.counters, logger: this.options.logger,
      });
      await this.discovery.start();
    }
    this.every(settings.antiEntropyMs, () => this.broadcast(this.haveMessage()));
    this.every(60_000, () => this.track(this.store.prune()));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.tree.stop();
    await this.blobs.stop(); // fetches end (their .part files kept) before the links go
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    clearTimeout(this.haveTimer);
    await this.discovery?.stop();
    this.discovery = undefined;
    await Promise.all([...this.links.values()].map((link) => link.stop()));
    this.links.clear();
    if (this.deliver) await this.broker?.unsubscribe(`${this.options.prefix}/+/mesh/to/${this.nodeId}`, this.deliver);
    if (this.liveness) await this.broker?.unsubscribe(`${this.options.prefix}/+/state`, this.liveness);
    await this.ownQueue;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    clearTimeout(this.commitTimer);
    await this.store.close();
    await this.state.stop();
    await this.directory.stop();
    await this.options.replays?.stop();
    await this.quarantine.stop();
  }

  /** Publishes a link proof on our broker (mesh-access.ts), retained so it is there when the peer subscribes. */
  publishLinkProof(topic: string, proof: Buffer): void {
    this.broker?.publish(topic, proof, { qos: 1, retain: true }).catch(() => this.options.counters.increment('mesh.errors'));
  }

  /** Adds an outbound link to a neighbour's broker (from config, dial-back or discovery). */
  link(url: string, peerId: string, pinnedCertificate?: PinnedCertificate, discovered = false): void {
    if (this.links.has(peerId) || peerId === this.nodeId) return;
    const { identity, prefix, counters, logger, settings } = this.options;
    const view = this.peers.get(peerId);
    const link: PeerLink = new PeerLink({
      url, peerId, identity, prefix, counters, logger, backoff: settings.backoff, now: () => Date.now(), pinnedCertificate, proofTimeoutMs: settings.linkProofTimeoutMs,
      verifyProof: (payload, expected) => verifyLinkProof(payload, { ...expected, brokerNodeId: peerId, clientNodeId: this.nodeId },
        (cert) => this.directory.learn(cert), (id) => this.directory.get(id)?.node),
      ...(discovered ? { tlsByProofOnly: true, onUnproven: () => this.replaceDiscovered(peerId, url) } : {}),
      onUp: () => {
        logger.info({ peer: peerId, url }, 'mesh link up');
        view.certsSent.clear();
        view.certsHeld.clear();
        view.stuck.clear();
        const { port, tls, tlsCert } = advertisedListener(this.broker);
        this.send(peerId, {
          t: 'hello', cert: identity.certificate, have: this.store.have(), sv: Buffer.from(this.state.stateVector()).toString('base64'),
          ...(port > 0 ? { port, tls } : {}), ...(tlsCert ? { tlsCert } : {}),
        });
        this.forks.linked(peerId);
        this.blobs.peerUp(peerId);
        this.tree.peerUp(peerId);
        this.send(peerId, { t: 'ihave', have: {} }); // says this node speaks the tree protocol
      },
      onDown: () => {
        logger.info({ peer: peerId }, 'mesh link down');
        for (const [origin, want] of this.wants) if (want.peer === peerId) this.wants.delete(origin);
        this.lateStarts.forgetPeer(peerId);
        this.blobs.peerDown(peerId);
        this.tree.peerDown(peerId);
      },
    });
    this.links.set(peerId, link);
    link.start();
  }

  /** Appends an entry to this node's own feed; it leaves the node once durable. */
  append(type: string, body: unknown): Promise<FeedEntry> {
    return this.appendAt(type, () => body);
  }

  /** append(), with a body made for the seq it gets (a private box is bound to it). */
  private appendAt(type: string, bodyFor: (seq: number) => unknown): Promise<FeedEntry> {
    const work = this.ownQueue.then(async () => {
      const head = this.store.head(this.nodeId);
      const seq = head.seq + 1;
      const entry = signEntry(this.options.identity.node, { seq, prev: head.hash, hlc: this.hlc.now(), type, body: bodyFor(seq) });
      const result = await this.store.apply(entry);
      if (result !== 'applied') throw new Error(`own feed: entry ${entry.seq} was ${result}`);
      this.uncommitted.push(entry);
      this.commitTimer ??= setTimeout(() => this.track(this.commit()), this.options.settings.commitIntervalMs);
      return entry;
    });
    this.ownQueue = work.catch(() => undefined);
    return work;
  }

  /**
   * Appends an entry only `recipients` (and this node) can read: relays store
   * and forward it, signed and verifiable, but see ciphertext only. A
   * recipient whose certificate is not known yet cannot be sealed for: it is
   * counted, and left out.
   */
  appendPrivate(type: string, body: unknown, recipients: readonly string[]): Promise<FeedEntry> {
    const { identity, counters } = this.options;
    return this.appendAt(PRIVATE_ENTRY_TYPE, (seq) => sealPrivateBody(type, body, recipients, identity, this.directory, counters, seq));
  }

  /** Sets a fact in the shared document (durable here, then sent to every peer). */
  /** An entry's type and body as this node may read them: a private one only if it is addressed here. */
  readEntry(entry: FeedEntry): { type: string; body: unknown } | undefined {
    if (entry.type !== PRIVATE_ENTRY_TYPE) return { type: entry.type, body: JSON.parse(entry.body) as unknown };
    const opened = openPrivateEntry(entry, this.options.identity, new Counters()); // a re-read is not a new arrival: not counted
    return opened && { type: opened.type, body: opened.body };
  }

  setShared(map: string, key: string, value: JsonValue): Promise<void> {
    return this.shared.set(map, key, value);
  }

  /** Sends one direct message to a linked peer (no store, no forwarding): false when the link is down. */
  sendTask(peerId: string, line: Buffer): boolean {
    return this.send(peerId, { t: 'task' }, [line]);
  }

  /** The peers whose link is up now (cheap: for health checks, unlike status()). */
  linkedPeers(): string[] {
    return [...this.links].filter(([, link]) => link.state === 'up').map(([id]) => id);
  }

  members(): NodeCertificate[] {
    return this.directory.all();
  }

  status(): Record<string, unknown> {
    const mine = this.store.have();
    const feeds: FeedStats[] = this.store.stats();
    return {
      nodeId: this.nodeId,
      owner: this.options.identity.certificate.owner,
      feeds,
      peers: this.peers.status(mine, (id) => {
        const link = this.links.get(id);
        return { name: this.directory.get(id)?.name, link: link && { state: link.state, url: link.url, lastError: link.lastError } };
      }) satisfies PeerStatus[],
      sharedState: { bytes: this.state.canonical().length },
      /** Origins proven to have forked (fork-proofs.ts). */
      quarantined: this.quarantine.all().map((proof) => proof.a.origin),
      budgets: this.budgetStatus(feeds),
      /** The broadcast tree: links that carry new entries whole (eager) or only announce them (lazy). */
      tree: this.tree.status(),
    };
  }

  /** Use of each budget (refusals are the feeds.refused.*, mesh.rejected.state_*, mesh.rejected.want_* counters). */
  private budgetStatus(feeds: readonly FeedStats[]): Record<string, { used: number; max: number }> {
    const { budgets } = this.options.settings;
    const others = feeds.filter((f) => f.origin !== this.nodeId);
    const perOwner = new Map<string, number>();
    for (const f of others) {
      const owner = this.directory.get(f.origin)?.owner ?? f.origin;
      perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1);
    }
    const doc = this.state.toJSON();
    return {
      feedBytes: { used: others.reduce((sum, f) => sum + f.bytes, 0), max: budgets.maxFeedBytes },
      originsOfBusiestOwner: { used: Math.max(0, ...perOwner.values()), max: budgets.originsPerOwner },
      sharedKeys: { used: Object.values(doc).reduce<number>((n, map) => n + 1 + Object.keys(map as object).length, 0), max: budgets.sharedKeys },
      sharedBytes: { used: this.state.canonical().length, max: budgets.sharedBytes },
    };
  }

  // ---- incoming --------------------------------------------------------

  private async onMessage(from: string, payload: Buffer): Promise<void> {
    const { counters } = this.options;
    let message;
    try {
      message = decodeMeshMessage(payload);
    } catch {
      counters.increment('mesh.rejected.message_malformed');
      return;
    }
    const { header, lines } = message;
    if (header.t === 'hello') {
      try {
        if (this.directory.learn(header.cert) !== from) throw new Error('certificate of another node');
      } catch (err) {
        counters.increment('mesh.rejected.hello_certificate');
        if (err instanceof ApiaryError) counters.increment(`mesh.rejected.certificate_${refusalCounter(err)}`);
        return;
      }
    } else if (!this.directory.get(from)) {
      counters.increment('mesh.rejected.unknown_peer');
      return;
    }
    const view = this.peers.get(from);
    view.lastSeen = Date.now();
    this.links.get(from)?.retrySoon();
    counters.increment(`mesh.received.${header.t}`);
    switch (header.t) {
      case 'hello':
        view.have = {};
        view.certsHeld.clear();
        view.stuck.clear();
        this.takeHave(from, header.have);
        if (!this.links.has(from)) this.dialBack(from, header);
        this.sendStateDiff(from, header.sv);
        // Our hello may have gone while their link to us was down: say what we hold, so they can answer too.
        this.send(from, this.haveMessage());
        this.requestMissing(from);
        this.blobs.peerUp(from);
        return;
      case 'have':
        if (header.answers !== undefined) this.answered(from, header.answers);
        this.takeHave(from, header.have);
        if (header.sv !== undefined) this.sendStateDiff(from, header.sv);
        this.requestMissing(from);
        return;
      case 'want':
        await this.answerWant(from, header.want, header.id);
        return;
      case 'entries':
        await this.onEntries(from, header, lines);
        return;
      case 'fork':
        this.forks.received(from, header, lines, (cert) => this.learnQuietly(cert));
        return;
      case 'blob-want':
      case 'blob':
      case 'blob-none':
        await this.blobs.received(from, header, lines);
        return;
      case 'task':
        if (lines[0]) this.emit('task', from, lines[0]);
        return;
      case 'ihave': {
        // Only origins whose certificates we hold: the others come by anti-entropy, with their certificates.
        const { known } = splitHave(header.have, (origin) => this.directory.get(origin) !== undefined, counters);
        this.peers.mergeHave(from, known);
        this.tree.onAnnounce(from, known);
        return;
      }
      case 'prune':
        this.tree.onPrune(from);
        return;
      case 'graft':
        this.tree.onGraft(from);
        await this.answerGraft(from, header.want);
        return;
      case 'state': {
        const changed = await this.state.applyRemote(Buffer.from(header.update, 'base64'), from);
        if (changed && header.hops + 1 < this.options.settings.maxHops) this.broadcast({ ...header, hops: header.hops + 1 }, from);
        return;
      }
    }
  }

  private async onEntries(from: string, header: Extract<MeshHeader, { t: 'entries' }>, lines: readonly Buffer[]): Promise<void> {
    const { counters, settings } = this.options;
    for (const cert of header.certs) this.learnQuietly(cert);
    let duplicates = 0;
    const entries = decodeLines(lines, counters, (entry) => {
      // Stamped beyond our clock + skew: refused now, asked for again later (issue 10, finding 12).
      if (entry.hlc.l > Date.now() + settings.clockSkewMs) return 'future_time';
      if (this.quarantine.has(entry.origin)) return 'quarantined';
      const verdict = this.directory.verdict(entry.origin, entry.key);
      return verdict === 'trusted' ? undefined : verdict.replace('-', '_');
    }, (entry) => {
      const known = this.store.recentHash(entry.origin, entry.seq);
      if (known === undefined || known !== entryHash(entry)) return false;
      this.store.countDuplicate();
      duplicates++;
      this.peers.raise(from, entry.origin, entry.seq);
      return true;
    });
    const view = this.peers.get(from);
    for (const entry of entries) {
      this.peers.raise(from, entry.origin, entry.seq);
      view.certsHeld.add(entry.origin); // it sent them: it holds their certificate
    }
    // A feed this node holds nothing of starts late only once every other linked holder was heard (late-start.ts).
    const admitted = this.lateStarts.admit(from, header.starts, entries, (origin) => this.store.head(origin).seq > 0, (origin, seq) => this.holdersOf(origin, seq, from));
    if (admitted.deferred.length > 0) {
      counters.increment('feeds.late_start_deferred', admitted.deferred.length);
      for (const origin of admitted.deferred) for (const holder of this.holdersOf(origin, 1, from)) this.requestMissing(holder);
    }
    const { outcome, applied, refused } = await applyEntries(this.store, admitted.entries, admitted.starts);
    // Over a replication budget here: asking this peer again gets the same answer until it has more.
    for (const origin of refused) view.stuck.add(origin);
    for (const entry of applied) {
      this.lateStarts.started(entry.origin);
      try {
        this.hlc.receive(entry.hlc);
      } catch {
        counters.increment('mesh.clock_ahead');
      }
      this.emit('entry', entry);
      const opened = entry.type === PRIVATE_ENTRY_TYPE ? openPrivateEntry(entry, this.options.identity, this.options.counters) : undefined;
      if (opened) this.emit('private', opened);
    }
    if (header.reply) {
      if (header.answers !== undefined && header.answers === view.probing?.id) this.releaseCutOffProbes(view.probing.origins, lines);
      if (header.answers !== undefined) this.answered(from, header.answers);
      else for (const entry of entries) if (this.wants.get(entry.origin)?.peer === from) this.wants.delete(entry.origin);
      if (outcome.gap > 0) {
        // The peer sent what it holds and it still does not join ours: both sides dropped the entries in between.
        for (const entry of entries) if (this.store.head(entry.origin).seq < entry.seq - 1) this.peers.get(from).stuck.add(entry.origin);
        counters.increment('mesh.unrecoverable_gaps', outcome.gap);
      }
      if (applied.length > 0) this.announceHaveSoon(from);
    } else {
      if (applied.length > 0) this.forward(applied, header.hops + 1, from);
      // Pushed, and every entry already here: this link is a redundant path of the tree.
      else if (lines.length > 0 && duplicates === lines.length) this.tree.duplicate(from);
      if (outcome.gap > 0) this.requestMissing(from);
    }
    this.requestMissing(from);
  }

  /** Linked peers (but `except`) that advertise `origin` up to at least `seq`. */
  private holdersOf(origin: string, seq: number, except: string): string[] {
    return [...this.links].filter(([id, link]) => {
      const view = this.peers.get(id);
      // A claim made before we held the origin's certificate (view.unknown) counts too: it is known by now.
      const stated = Math.max(view.have[origin] ?? 0, view.unknown[origin] ?? 0);
      return id !== except && link.state === 'up' && stated >= seq && !view.stuck.has(origin);
    }).map(([id]) => id);
  }

  /** Learns a certificate that came along with entries or a proof; one we refuse is counted. */
  private learnQuietly(cert: unknown): void {
    try {
      this.directory.learn(cert);
    } catch (err) {
      this.options.counters.increment(`mesh.rejected.certificate_${refusalCounter(err)}`);
    }
  }

  private sendStateDiff(peerId: string, stateVector: string): void {
    let diff: Uint8Array | undefined;
    try {
      diff = this.state.diffFor(Buffer.from(stateVector, 'base64'));
    } catch {
      this.options.counters.increment('mesh.rejected.state_vector');
      return;
    }
    if (diff) this.send(peerId, { t: 'state', update: Buffer.from(diff).toString('base64'), hops: 0 });
  }

  /** What we hold: feeds (have-vector) and shared state (Yjs state vector). */
  private haveMessage(): MeshHeader {
    return { t: 'have', have: this.store.have(), sv: Buffer.from(this.state.stateVector()).toString('base64') };
  }

  /**
   * A reply to want `id` came: every origin asked of that peer up to it is
   * free to be asked again. Origins a full batch cut off are then re-asked at
   * once, rather than after wantTimeoutMs; origins asked later stay asked.
   */
  private answered(peerId: string, id: number): void {
    for (const [origin, want] of this.wants) if (want.peer === peerId && want.id <= id) this.wants.delete(origin);
  }

  private async answerWant(from: string, want: Record<string, number>, id: number | undefined): Promise<void> {
    const { counters, settings } = this.options;
    // The answer goes out on our link to the peer: without one, build nothing (finding 11).
    if (this.links.get(from)?.state !== 'up') {
      counters.increment('mesh.rejected.want_no_link');
      return;
    }
    if (!this.wantLimit.take(from)) {
      counters.increment('mesh.rejected.want_rate');
      return;
    }
    const batch = await collectBatch(this.store, want, messageBudget(this.certificatesFor(from, Date.now()), settings.batchBytes));
    if (batch.entries.length === 0) {
      this.send(from, { t: 'have', have: this.store.have(), ...(id !== undefined ? { answers: id } : {}) }); // we do not have it (any more): say what we do have
      return;
    }
    this.sendEntries(from, batch.entries, { hops: 0, reply: true, starts: batch.starts, ...(id !== undefined ? { answers: id } : {}) });
    this.options.counters.increment('mesh.catchup_entries_sent', batch.entries.length);
    this.options.counters.increment('mesh.catchup_bytes_sent', batch.bytes);
  }

  /** A graft: the peer's tree lost it these entries; they are pushed (not a reply: it spreads them on). Rate-limited as wants are. */
  private async answerGraft(from: string, want: Record<string, number>): Promise<void> {
    const { counters, settings } = this.options;
    if (this.links.get(from)?.state !== 'up') return;
    if (!this.wantLimit.take(from)) {
      counters.increment('mesh.rejected.graft_rate');
      return;
    }
    const batch = await collectBatch(this.store, want, messageBudget(this.certificatesFor(from, Date.now()), settings.batchBytes));
    if (batch.entries.length === 0) return;
    this.sendEntries(from, batch.entries, { hops: 0, reply: false, starts: batch.starts });
    counters.increment('mesh.tree.graft_entries_sent', batch.entries.length);
  }

  // ---- finding peers ---------------------------------------------------

  /** A trusted node linked to us but we have no link to it: without one, we cannot answer (we publish on its broker). */
  private dialBack(peerId: string, { port, tls, tlsCert }: { port?: number; tls?: boolean; tlsCert?: string }): void {
    const heard = this.options.peerAddresses.get(peerId);
    if (!this.options.settings.dialBack || port === undefined || heard === undefined) {
      this.options.counters.increment('mesh.one_sided_links');
      return;
    }
    if (heard.tls && !tls) {
      // Heard over TLS: never dialled back in plain, whatever its hello says.
      this.options.counters.increment('mesh.rejected.dial_back_downgrade');
      return;
    }
    const address = heard.address;
    // Each link back is a client kept retrying for good: an owner minting node ids gets no more of them than of feeds.
    const owner = this.directory.get(peerId)?.owner;
    let sameOwner = 0;
    for (const id of this.links.keys()) if (this.directory.get(id)?.owner === owner) sameOwner++;
    if (sameOwner >= this.options.settings.budgets.originsPerOwner) {
      this.options.counters.increment('mesh.rejected.dial_back_budget');
      return;
    }
    this.options.counters.increment('mesh.dial_backs');
    const target = dialBackTarget(address, { port, tls, tlsCert });
    if (target.badCertificate) this.options.counters.increment('mesh.rejected.hello_tls_certificate');
    this.link(target.url, peerId, target.pin);
  }

  private onDiscovered(peer: DiscoveredPeer): void {
    if (!this.running) return;
    const { trust, counters } = this.options;
    // Only a candidate: the link proves who it is. This just skips nodes we would refuse anyway.
    if (!trust.owners.has(peer.owner) || trust.revoked.has(peer.owner)) {
      counters.increment('mesh.discovery.untrusted');
      return;
    }
    this.candidates.add(peer);
    if (this.links.has(peer.nodeId) || this.candidates.isShunned(peer.url, Date.now())) return;
    this.options.logger.info({ peer: peer.nodeId, url: peer.url }, 'mesh neighbour found by mDNS');
    this.link(peer.url, peer.nodeId, undefined, true);
  }

  /** A discovered link never proved the node's key: drop it, shun that address, try another one announced for the node. */
  private replaceDiscovered(peerId: string, url: string): void {
    const link = this.links.get(peerId);
    if (!link || link.url !== url) return;
    this.options.counters.increment('mesh.discovery.unproven');
    this.options.logger.warn({ peer: peerId, url }, 'mDNS: the device at this address did not prove it is the node it announced; trying another address');
    this.links.delete(peerId);
    this.track(link.stop());
    const now = Date.now();
    this.candidates.shun(url, now);
    const next = this.candidates.next(peerId, now);
    if (next && this.running) this.link(next, peerId, undefined, true);
  }

  // ---- outgoing --------------------------------------------------------

  /** Asks `peer` for what it holds beyond our heads, for origins nobody else is already sending. */
  private requestMissing(peerId: string): void {
    if (!this.peers.has(peerId) || this.links.get(peerId)?.state !== 'up') return;
    const view = this.peers.get(peerId);
    // Origins it named whose certificates have come since (with their entries): now known, their stated seqs count.
    const nowKnown = Object.fromEntries(Object.entries(view.unknown).filter(([origin]) => this.directory.get(origin)));
    for (const origin of Object.keys(nowKnown)) delete view.unknown[origin];
    this.peers.mergeHave(peerId, nowKnown);
    const now = Date.now();
    const want: Record<string, number> = {};
    for (const [origin, seq] of Object.entries(view.have)) {
      const head = this.store.head(origin).seq;
      if (seq <= head || view.stuck.has(origin) || this.quarantine.has(origin)) continue;
      const asked = this.wants.get(origin);
      if (asked && now - asked.at < this.options.settings.wantTimeoutMs) continue;
      if (asked && head === 0) this.lateStarts.noAnswer(origin, asked.peer);
      if (head === 0 && this.lateStarts.askOthersFirst(origin, peerId, this.holdersOf(origin, 1, peerId))) continue;
      want[origin] = head + 1;
    }
    const asked = Object.keys(want);
    // Origins it holds that we have no certificate for: a few, now and then (peer-origins.ts); their entries bring the certificate.
    const probed = this.probes.pick(Object.keys(view.unknown));
    for (const origin of probed) want[origin] = this.store.head(origin).seq + 1;
    if (Object.keys(want).length === 0) return;
    // Only a want that went out blocks asking another peer for the same origin.
    const id = ++this.lastWantId;
    if (!this.send(peerId, { t: 'want', want, id })) return this.probes.release(probed);
    for (const origin of asked) this.wants.set(origin, { peer: peerId, at: now, id });
    if (probed.length > 0) view.probing = { id, origins: probed };
  }

  private async commit(): Promise<void> {
    this.commitTimer = undefined;
    const entries = this.uncommitted.splice(0);
    if (entries.length === 0) return;
    try {
      await this.store.flush(this.nodeId); // durable before anyone else sees them
    } catch (err) {
      // Not durable, so not sent: they go out with the next commit.
      this.uncommitted.unshift(...entries);
      if (this.running) this.commitTimer ??= setTimeout(() => this.track(this.commit()), this.options.settings.commitIntervalMs);
      throw err;
    }
    if (this.running) this.forward(entries, 0, undefined);
  }

  /** New entries along the tree: pushed to eager links (within maxHops), announced to lazy ones. */
  private forward(entries: readonly FeedEntry[], hops: number, except: string | undefined): void {
    const up = [...this.links].filter(([, link]) => link.state === 'up').map(([id]) => id);
    const eager = this.tree.spread(entries, except, up);
    if (hops >= this.options.settings.maxHops) return;
    for (const peerId of eager) {
      const view = this.peers.get(peerId);
      const fresh = entries.filter((e) => e.origin !== peerId && (view.have[e.origin] ?? 0) < e.seq);
      if (fresh.length > 0) this.sendEntries(peerId, fresh, { hops, reply: false, starts: {} });
    }
  }

  /** Sends entries in as many messages as the peer's limits need (entry-batches.ts); a reply's `answers` goes with the last. */
  private sendEntries(peerId: string, entries: readonly FeedEntry[], meta: { hops: number; reply: boolean; starts: Record<string, number>; answers?: number }): void {
    const view = this.peers.get(peerId);
    const now = Date.now();
    const certOf = this.certificatesFor(peerId, now);
    const messages = splitIntoMessages(entries, messageBudget(certOf, this.options.settings.batchBytes));
    for (const [i, part] of messages.entries()) {
      const origins = [...new Set(part.map((e) => e.origin))];
      const certs = origins.flatMap((origin) => certOf(origin) ?? []);
      const starts = Object.fromEntries(Object.entries(meta.starts).filter(([origin]) => origins.includes(origin)));
      const { answers, ...rest } = meta;
      const last = i === messages.length - 1;
      if (!this.send(peerId, { t: 'entries', ...rest, starts, certs, ...(last && answers !== undefined ? { answers } : {}) }, part.map(encodeEntry))) return;
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
  private certificatesFor(peerId: string, now: number): (origin: string) => NodeCertificate | undefined {
    const view = this.peers.get(peerId);
    return (origin) => certificateToSend(view, origin, this.directory.get(origin), now, this.options.settings.wantTimeoutMs);
  }

  /** A have-vector the peer stated: origins we hold certificates for are kept, a bounded few others are candidates to ask for. */
  private takeHave(from: string, have: Record<string, number>): void {
    const stated = splitHave(have, (origin) => this.directory.get(origin) !== undefined, this.options.counters);
    this.peers.mergeHave(from, stated.known);
    this.peers.get(from).unknown = stated.unknown;
  }

  private broadcast(header: MeshHeader, except?: string): void {
    for (const peerId of this.links.keys()) if (peerId !== except) this.send(peerId, header);
  }

  /** After catching up, tell the other peers (debounced): they may lack the same entries. */
  private announceHaveSoon(except: string): void {
    if (this.haveTimer) return;
    this.haveTimer = setTimeout(() => {
      this.haveTimer = undefined;
      if (this.running) this.broadcast(this.haveMessage(), except);
    }, 250);
  }

  private send(peerId: string, header: MeshHeader, lines: readonly Buffer[] = []): boolean {
    const link = this.links.get(peerId);
    if (!link) {
      this.options.counters.increment('mesh.sends_no_link');
      return false;
    }
    const ok = link.send(encodeMeshMessage(header, lines));
    if (ok) this.options.counters.increment(`mesh.sent.${header.t}`);
    return ok;
  }

  // ---- helpers ---------------------------------------------------------

  private every(ms: number, task: () => void): void {
    const timer = setInterval(task, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.options.counters.increment('mesh.errors');
      this.options.logger.warn({ err: describeError(err) }, 'mesh step failed');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}
