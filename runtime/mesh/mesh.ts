/**
 * The mesh: this node's feeds, its links to neighbours and the shared state,
 * and the rules that make every node end with every entry exactly once.
 *
 * - Own entries are signed, appended, and made durable (group commit every
 *   commitInterval) before they leave the node: a power cut can then never
 *   make this node sign a second history for a seq a peer already holds.
 * - The feeds' gossip rules (the broadcast tree, pulled catch-up) are in
 *   feed-gossip.ts, apart from transport and disk; here they run over the
 *   MQTT links and the feed store, with anti-entropy every
 *   antiEntropyInterval.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { EmbeddedBroker, InProcessDeliver } from '../broker/embedded-broker.js';
import { Counters } from '../counters.js';
import { ApiaryError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeCertificate, TrustPolicy } from './certificate.js';
import { signEntry, type FeedEntry } from './feed-entry.js';
import { FeedStore, type FeedStats } from './feed-store.js';
import { ForkGossip, Quarantine } from './fork-proofs.js';
import { FeedGossip } from './feed-gossip.js';
import { HybridLogicalClock } from './hybrid-logical-clock.js';
import { MemberDirectory, refusalCounter } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import { decodeMeshMessage, encodeMeshMessage, MAX_SPARSE_ORIGINS, meshSender, type MeshHeader } from './mesh-protocol.js';
import { DiscoveryCandidates, MdnsDiscovery, type DiscoveredPeer } from './mdns-discovery.js';
import { verifyLinkProof } from './link-token.js';
import type { PeerAddress } from './mesh-access.js';
import { advertisedListener, dialBackTarget } from './neighbour-addresses.js';
import { PeerLink, type PinnedCertificate } from './peer-link.js';
import type { PeerStatus } from './peer-table.js';
import { openOwnPrivateEntry, openPrivateEntry, PRIVATE_ENTRY_TYPE, sealPrivateBody } from './private-entries.js';
import { canonicalJson } from '../canonical-json.js';
import { BlobTransfer } from './blob-transfer.js';
import { SharedState, type JsonValue } from './shared-state.js';
import { noteLegacySharedState, SharedDocument, type SharedStateRules } from './shared-state-rules.js';
import { SharedStateBudget } from './shared-state-budget.js';
import { ReconcilingPeers } from './reconciling-peers.js';
import { RelayCache } from './relay-cache.js';
import { KeepRules, PeerSparseOrigins, type KeepRule } from './sparse-replication.js';

export { PRIVATE_ENTRY_TYPE } from './private-entries.js';

/** mesh.relay.maxBytes by default. */
export const DEFAULT_RELAY_BYTES = 4 * 1024 * 1024;

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
  /** mesh.replicate: what this node keeps of other feeds (sparse-replication.ts); absent: everything. */
  replicate?: readonly KeepRule[];
  /** mesh.relay.maxBytes: entries passed on but not kept, held in memory up to this (relay-cache.ts). */
  relayMaxBytes?: number;
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
  /** The feeds' gossip rules (feed-gossip.ts), over this node's links and store. */
  private readonly gossip: FeedGossip;
  private readonly hlc: HybridLogicalClock;
  private readonly links = new Map<string, PeerLink>();
  private ownQueue: Promise<unknown> = Promise.resolve();
  private uncommitted: FeedEntry[] = [];
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private deliver: InProcessDeliver | undefined;
  private liveness: InProcessDeliver | undefined;
  private running = false;
  private broker: EmbeddedBroker | undefined;
  private discovery: MdnsDiscovery | undefined;
  private readonly candidates = new DiscoveryCandidates();
  private readonly keepRules: KeepRules;
  private readonly relay: RelayCache;
  /** Which origins each peer holds sparsely (its `sparse` message says). */
  private readonly peerSparse = new PeerSparseOrigins();
  /** Per peer, the list of origins held sparsely it was last told. */
  private readonly sparseTold = new Map<string, string>();
  /** Peers that reconcile by ranges, kept across restarts (reconciling-peers.ts). */
  private readonly reconcilingPeers: ReconcilingPeers;

  constructor(private readonly options: MeshOptions) {
    super();
    const dir = path.join(options.dataDir, 'mesh');
    const { settings, counters } = options;
    const { budgets } = settings;
    this.keepRules = new KeepRules(settings.replicate, this.nodeId, (origin) => this.directory.get(origin)?.owner);
    this.relay = new RelayCache({ maxBytes: settings.relayMaxBytes ?? DEFAULT_RELAY_BYTES, counters });
    this.store = new FeedStore({
      dir: path.join(dir, 'feeds'), counters, segmentBytes: settings.segmentBytes, maxBytesPerOrigin: settings.maxBytesPerOrigin, maxAgeMs: settings.maxAgeMs,
      onFork: (held, received) => this.forks.found(held, received),
      self: this.nodeId, ownerOf: (origin) => this.directory.get(origin)?.owner, budget: budgets,
      ...(this.keepRules.sparse ? { replication: this.keepRules } : {}),
      sparse: { dir: path.join(dir, 'sparse'), relay: this.relay },
    });
    this.quarantine = new Quarantine({ file: path.join(dir, 'quarantine.json'), counters });
    this.reconcilingPeers = new ReconcilingPeers(path.join(dir, 'reconciling-peers.json'), counters);
    this.directory = new MemberDirectory({ file: path.join(dir, 'members.json'), policy: options.trust, counters, self: options.identity.certificate, maxSkewMs: settings.maxSkewMs });
    this.forks = new ForkGossip({
      quarantine: this.quarantine, directory: this.directory, counters, logger: options.logger, maxHops: settings.maxHops,
      peers: () => this.links.keys(), send: (peerId, header, lines) => this.send(peerId, header, lines),
    });
    this.hlc = new HybridLogicalClock(() => Date.now(), settings.clockSkewMs);
    this.gossip = new FeedGossip({
      self: this.nodeId, store: this.store.forPeers(), counters,
      settings: { ...settings, wantsPerSecond: budgets.wantsPerSecond, wantBurst: budgets.wantBurst },
      scheduler: { now: () => Date.now(), after: (ms, fn) => { const t = setTimeout(fn, ms); t.unref(); return () => clearTimeout(t); } },
      trust: {
        known: (origin) => this.directory.get(origin) !== undefined,
        // Stamped beyond our clock + skew: refused now, asked for again later (issue 10, finding 12).
        refusal: (entry) => {
          if (entry.hlc.l > Date.now() + settings.clockSkewMs) return 'future_time';
          if (this.quarantine.has(entry.origin)) return 'quarantined';
          const verdict = this.directory.verdict(entry.origin, entry.key);
          return verdict === 'trusted' ? undefined : verdict.replace('-', '_');
        },
        quarantined: (origin) => this.quarantine.has(origin),
        learn: (cert) => this.learnQuietly(cert),
        certificate: (origin) => this.directory.get(origin),
      },
      send: (peer, header, lines) => this.send(peer, header, lines),
      links: () => [...this.links].map(([id, link]) => [id, link.state === 'up'] as const),
      isUp: (peer) => this.links.get(peer)?.state === 'up',
      applied: (entries) => this.onApplied(entries),
      haveMessage: (have) => this.haveMessage(have),
      sparseAt: (peer, origin) => this.peerSparse.has(peer, origin),
      reconciling: (peer, reconciles) => this.reconcilingPeers.set(peer, reconciles),
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
      this.gossip.rememberReconciling(await this.reconcilingPeers.load());
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
      if (id !== this.nodeId && this.gossip.hasPeer(id)) this.gossip.announced(id, Buffer.from(packet.payload).toString('utf8').slice(0, 16));
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
    this.every(settings.antiEntropyMs, () => {
      for (const peerId of this.links.keys()) this.gossip.sayHave(peerId);
      const sparse = this.store.sparseOrigins().join();
      for (const peerId of this.links.keys()) if (this.sparseTold.has(peerId) && this.sparseTold.get(peerId) !== sparse) this.sayHeldSparsely(peerId);
    });
    this.every(60_000, () => this.track(this.store.prune()));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.gossip.stop();
    await this.blobs.stop(); // fetches end (their .part files kept) before the links go
    for (const timer of this.timers.splice(0)) clearInterval(timer);
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
    await this.reconcilingPeers.flush();
  }

  /** Publishes a link proof on our broker (mesh-access.ts), retained so it is there when the peer subscribes. */
  publishLinkProof(topic: string, proof: Buffer): void {
    this.broker?.publish(topic, proof, { qos: 1, retain: true }).catch(() => this.options.counters.increment('mesh.errors'));
  }

  /** Adds an outbound link to a neighbour's broker (from config, dial-back or discovery). */
  link(url: string, peerId: string, pinnedCertificate?: PinnedCertificate, discovered = false): void {
    if (this.links.has(peerId) || peerId === this.nodeId) return;
    const { identity, prefix, counters, logger, settings } = this.options;
    const link: PeerLink = new PeerLink({
      url, peerId, identity, prefix, counters, logger, backoff: settings.backoff, now: () => Date.now(), pinnedCertificate, proofTimeoutMs: settings.linkProofTimeoutMs,
      verifyProof: (payload, expected) => verifyLinkProof(payload, { ...expected, brokerNodeId: peerId, clientNodeId: this.nodeId },
        (cert) => this.directory.learn(cert), (id) => this.directory.get(id)?.node),
      ...(discovered ? { tlsByProofOnly: true, onUnproven: () => this.replaceDiscovered(peerId, url) } : {}),
      onUp: () => {
        logger.info({ peer: peerId, url }, 'mesh link up');
        const { port, tls, tlsCert } = advertisedListener(this.broker);
        this.send(peerId, {
          t: 'hello', cert: identity.certificate, have: this.gossip.helloHave(peerId), sv: Buffer.from(this.state.stateVector()).toString('base64'),
          ...(port > 0 ? { port, tls } : {}), ...(tlsCert ? { tlsCert } : {}),
        });
        this.sayHeldSparsely(peerId);
        this.forks.linked(peerId);
        this.blobs.peerUp(peerId);
        this.gossip.linkUp(peerId);
      },
      onDown: () => {
        logger.info({ peer: peerId }, 'mesh link down');
        this.gossip.linkDown(peerId);
        this.blobs.peerDown(peerId);
      },
    });
    this.links.set(peerId, link);
    this.gossip.linked(peerId);
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

  /** A private entry this node sealed into its own feed, opened without X25519 (undefined for anything else). */
  openOwn(entry: FeedEntry): { type: string; body: unknown } | undefined {
    return openOwnPrivateEntry(entry, this.options.identity);
  }

  /** An entry's type and body as this node may read them: a private one only if it is addressed here. */
  readEntry(entry: FeedEntry): { type: string; body: unknown } | undefined {
    if (entry.type !== PRIVATE_ENTRY_TYPE) return { type: entry.type, body: JSON.parse(entry.body) as unknown };
    const opened = openPrivateEntry(entry, this.options.identity, new Counters()); // a re-read is not a new arrival: not counted
    return opened && { type: opened.type, body: opened.body };
  }

  /** Sets a fact in the shared document (durable here, then sent to every peer). */
  setShared(map: string, key: string, value: JsonValue): Promise<void> {
    return this.shared.set(map, key, value);
  }

  /** Sends one direct message to a linked peer (no store, no forwarding): false when the link is down. */
  sendTask(peerId: string, line: Buffer): boolean {
    return this.send(peerId, { t: 'task' }, [line]);
  }

  /** One origin's broadcast tree here: which links up now carry its entries whole (eager) and which announce them (lazy). */
  treeOf(origin: string): { eager: string[]; lazy: string[] } {
    return this.gossip.treeOf(origin);
  }

  /** The peers whose link is up now (cheap: for health checks, unlike status()). */
  linkedPeers(): string[] {
    return [...this.links].filter(([, link]) => link.state === 'up').map(([id]) => id);
  }

  members(): NodeCertificate[] {
    return this.directory.all();
  }

  status(): Record<string, unknown> {
    const feeds: FeedStats[] = this.store.stats();
    return {
      nodeId: this.nodeId,
      owner: this.options.identity.certificate.owner,
      feeds,
      peers: this.gossip.peerStatus((id) => {
        const link = this.links.get(id);
        return { name: this.directory.get(id)?.name, link: link && { state: link.state, url: link.url, lastError: link.lastError } };
      }) satisfies PeerStatus[],
      sharedState: { bytes: this.state.canonical().length },
      /** Origins proven to have forked (fork-proofs.ts). */
      quarantined: this.quarantine.all().map((proof) => proof.a.origin),
      budgets: this.budgetStatus(feeds),
      /** The broadcast trees (one per origin): how many, and for how many origins each link is lazy (only announces). */
      tree: this.gossip.treeStatus(),
      /** What this node keeps (mesh.replicate) and what it holds only to pass on (sparse-replication.ts). */
      replication: this.replicationStatus(),
    };
  }

  private replicationStatus(): Record<string, unknown> {
    const counted = this.options.counters.snapshot();
    return {
      rules: this.keepRules.describe(),
      sparseOrigins: this.store.sparseOrigins(),
      kept: counted['feeds.sparse.kept'] ?? 0,
      relayed: counted['feeds.sparse.relayed'] ?? 0,
      expired: counted['feeds.sparse.expired'] ?? 0,
      relay: this.relay.status(),
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
    this.gossip.heard(from);
    this.links.get(from)?.retrySoon();
    counters.increment(`mesh.received.${header.t}`);
    switch (header.t) {
      case 'hello':
        this.peerSparse.note(from, []); // its `sparse` message after the hello says anew
        if (!this.links.has(from)) this.dialBack(from, header);
        this.sendStateDiff(from, header.sv);
        this.gossip.onHello(from, header.have);
        this.blobs.peerUp(from);
        return;
      case 'have':
        if (header.sv !== undefined) this.sendStateDiff(from, header.sv);
        this.gossip.onHave(from, header);
        return;
      case 'want':
        await this.gossip.onWant(from, header.want, header.id);
        return;
      case 'entries':
        await this.gossip.onEntries(from, header, lines);
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
      case 'ihave':
        this.gossip.onIHave(from, header.have);
        return;
      case 'prune':
        this.gossip.onPrune(from, header.origins);
        return;
      case 'graft':
        await this.gossip.onGraft(from, header.want);
        return;
      case 'sparse':
        this.peerSparse.note(from, header.origins);
        return;
      case 'sum':
        this.gossip.onSum(from, header.ranges);
        return;
      case 'state': {
        const changed = await this.state.applyRemote(Buffer.from(header.update, 'base64'), from);
        if (changed && header.hops + 1 < this.options.settings.maxHops) this.broadcast({ ...header, hops: header.hops + 1 }, from);
        return;
      }
    }
  }

  /** Entries from peers, verified and stored: the node's clock follows them, and extensions hear of them. */
  private onApplied(entries: readonly FeedEntry[]): void {
    for (const entry of entries) {
      try {
        this.hlc.receive(entry.hlc);
      } catch {
        this.options.counters.increment('mesh.clock_ahead');
      }
      this.emit('entry', entry);
      const opened = entry.type === PRIVATE_ENTRY_TYPE ? openPrivateEntry(entry, this.options.identity, this.options.counters) : undefined;
      if (opened) this.emit('private', opened);
    }
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

  /**
   * Tells `peer` which origins this node holds sparsely (the first
   * MAX_SPARSE_ORIGINS; a want for another gets an honest answer): after
   * the hello, and when the list changes. A separate message: a node of an
   * older version refuses it (counted) and still takes the hello.
   */
  private sayHeldSparsely(peerId: string): void {
    const origins = this.store.sparseOrigins();
    this.sparseTold.set(peerId, origins.join());
    if (origins.length > 0 || this.keepRules.sparse) this.send(peerId, { t: 'sparse', origins: origins.slice(0, MAX_SPARSE_ORIGINS) });
  }

  /** What we hold: feeds (have-vector, all of it unless given) and shared state (Yjs state vector). */
  private haveMessage(have: Record<string, number> = this.store.have()): MeshHeader {
    return { t: 'have', have, sv: Buffer.from(this.state.stateVector()).toString('base64') };
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
    if (this.running) this.gossip.spreadOwn(entries);
  }

  private broadcast(header: MeshHeader, except?: string): void {
    for (const peerId of this.links.keys()) if (peerId !== except) this.send(peerId, header);
  }

  private send(peerId: string, header: MeshHeader, lines: readonly Buffer[] = []): boolean {
    const link = this.links.get(peerId);
    if (!link) {
      this.options.counters.increment('mesh.sends_no_link');
      return false;
    }
    const payload = encodeMeshMessage(header, lines);
    const ok = link.send(payload);
    if (ok) {
      this.options.counters.increment(`mesh.sent.${header.t}`);
      this.options.counters.increment(`mesh.sent_bytes.${header.t}`, payload.length);
    }
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
