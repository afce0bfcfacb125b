/**
 * A discrete-event simulation of the mesh's feed gossip (issue 16): hundreds
 * of nodes in one process, each running the real gossip rules (FeedGossip,
 * runtime/mesh/feed-gossip.ts, with the broadcast tree), real signed entries
 * and the real wire format (every message encoded and decoded, its bytes
 * counted), over a simulated network (latency, loss, partitions, churn) and
 * a simulated clock. What it leaves out: certificates (every origin is
 * known; their bytes are not counted), shared state, blobs and disk.
 */
import { Counters } from '../../runtime/counters.js';
import { encodeEntry, signEntry, verifyEntry, type FeedEntry } from '../../runtime/mesh/feed-entry.js';
import { FeedGossip, type GossipSettings } from '../../runtime/mesh/feed-gossip.js';
import { decodeMeshMessage, encodeMeshMessage, type MeshHeader } from '../../runtime/mesh/mesh-protocol.js';
import { ephemeralIdentity, type NodeIdentity } from '../../runtime/identity/identity.js';
import { EntryPool, MemoryFeedLog } from './memory-feed-log.js';
import { SimClock } from './sim-clock.js';
import { uniformAt } from '../../devices/sim/seeded-random.js';

/** A deterministic stream of uniforms in [0, 1). */
class SeededRandom {
  private step = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    return uniformAt(this.seed, 1, this.step++);
  }
}

export interface NetworkModel {
  /** One-way delay of a message: base + uniform jitter (ms). */
  latencyMs: number;
  jitterMs: number;
  /** Chance that a message is lost (a link that drops and reconnects loses what was in flight). */
  loss: number;
}

export const DEFAULT_SETTINGS: GossipSettings = {
  maxHops: 4, commitIntervalMs: 200, batchBytes: 256 * 1024, antiEntropyMs: 30_000, wantTimeoutMs: 5_000, wantsPerSecond: 20, wantBurst: 40,
};

/** One direction of a link; `due`: when its last message arrives (TCP keeps a link's messages in order). */
interface Link { up: boolean; cut: boolean; due: number }

export class SimNode {
  readonly identity: NodeIdentity;
  readonly store: MemoryFeedLog;
  readonly counters = new Counters();
  readonly gossip: FeedGossip;
  alive = true;
  /** Stands for a node of a version before range reconciliation: it never sends a `sum`, and refuses one (as its schema would). */
  older = false;
  private pending: FeedEntry[] = [];
  private commitTimer: (() => void) | undefined;
  private stopAntiEntropy: (() => void) | undefined;

  constructor(readonly index: number, private readonly sim: MeshSim, pool: EntryPool) {
    this.identity = ephemeralIdentity();
    this.store = new MemoryFeedLog(pool);
    this.gossip = new FeedGossip({
      self: this.identity.nodeId, store: this.store, counters: this.counters, settings: sim.settings, scheduler: sim.clock,
      trust: { known: () => true, refusal: () => undefined, quarantined: () => false, learn: () => undefined, certificate: () => undefined },
      send: (peer, header, lines) => sim.send(this, peer, header, lines),
      links: () => sim.linksOf(this),
      isUp: (peer) => sim.isUp(this, peer),
      applied: () => undefined,
      haveMessage: (have) => ({ t: 'have', have: have ?? this.store.have() }),
      verify: (entry) => sim.verify(entry),
    });
  }

  get id(): string {
    return this.identity.nodeId;
  }

  start(): void {
    this.stopAntiEntropy = this.sim.clock.every(this.sim.settings.antiEntropyMs, () => {
      for (const [peer, up] of this.sim.linksOf(this)) if (up) this.gossip.sayHave(peer);
    });
  }

  /** Appends one entry; own entries go out a commit interval later, as on a board. */
  async write(body: unknown): Promise<void> {
    const head = this.store.head(this.id);
    const entry = signEntry(this.identity, { seq: head.seq + 1, prev: head.hash, hlc: { l: Math.floor(this.sim.clock.now()), c: 0 }, type: 'reading', body });
    await this.store.apply(entry);
    this.sim.written++;
    this.sim.writtenBytes += encodeEntry(entry).length;
    this.pending.push(entry);
    this.commitTimer ??= this.sim.clock.after(this.sim.settings.commitIntervalMs, () => {
      this.commitTimer = undefined;
      const batch = this.pending.splice(0);
      if (this.alive) this.gossip.spreadOwn(batch);
    });
  }

  /** The link to `peer` came up on this side: hello, then tree and reconciliation, as Mesh does. */
  linkUp(peer: string): void {
    this.sim.send(this, peer, { t: 'hello', cert: null, have: this.gossip.helloHave(peer), sv: '' });
    this.gossip.linkUp(peer);
  }

  receive(from: string, payload: Buffer): Promise<void> {
    const { header, lines } = decodeMeshMessage(payload);
    if (this.older && header.t === 'sum') {
      this.counters.increment('mesh.rejected.message_malformed');
      return Promise.resolve();
    }
    this.gossip.heard(from);
    switch (header.t) {
      case 'hello': this.gossip.onHello(from, header.have); return Promise.resolve();
      case 'have': this.gossip.onHave(from, header); return Promise.resolve();
      case 'want': return this.gossip.onWant(from, header.want, header.id);
      case 'entries': return this.gossip.onEntries(from, header, lines);
      case 'ihave': this.gossip.onIHave(from, header.have); return Promise.resolve();
      case 'prune': this.gossip.onPrune(from, header.origins); return Promise.resolve();
      case 'graft': return this.gossip.onGraft(from, header.want);
      case 'sum': this.gossip.onSum(from, header.ranges); return Promise.resolve();
      default: return Promise.resolve();
    }
  }

  stop(): void {
    this.alive = false;
    this.stopAntiEntropy?.();
    this.commitTimer?.();
    this.commitTimer = undefined;
    this.gossip.stop();
  }
}

export interface SimTraffic { messages: number; bytes: number; lost: number; byType: Record<string, { messages: number; bytes: number }> }

export class MeshSim {
  readonly clock = new SimClock();
  readonly nodes: SimNode[] = [];
  private readonly byId = new Map<string, SimNode>();
  /** node id -> peer id -> link (each direction its own, as each node dials the other's broker). */
  private readonly links = new Map<string, Map<string, Link>>();
  readonly traffic: SimTraffic = { messages: 0, bytes: 0, lost: 0, byType: {} };
  written = 0;
  writtenBytes = 0;
  /** Messages lost on purpose (a test's one lost push), besides the network's random loss. */
  lose: ((from: SimNode, to: string, header: MeshHeader) => boolean) | undefined;
  private readonly verified = new Set<string>();
  private readonly random: SeededRandom;
  private readonly pool = new EntryPool();

  constructor(readonly settings: GossipSettings, private readonly network: NetworkModel, seed = 1) {
    this.random = new SeededRandom(seed);
  }

  addNodes(n: number): void {
    for (let i = 0; i < n; i++) {
      const node = new SimNode(this.nodes.length, this, this.pool);
      this.nodes.push(node);
      this.byId.set(node.id, node);
      this.links.set(node.id, new Map());
    }
  }

  /** Links a and b both ways (each dials the other), up after one round trip. */
  connect(a: SimNode, b: SimNode): void {
    (this.links.get(a.id) as Map<string, Link>).set(b.id, { up: false, cut: false, due: 0 });
    (this.links.get(b.id) as Map<string, Link>).set(a.id, { up: false, cut: false, due: 0 });
    a.gossip.linked(b.id);
    b.gossip.linked(a.id);
    this.clock.after(2 * this.network.latencyMs, () => this.bringUp(a, b));
  }

  private bringUp(a: SimNode, b: SimNode): void {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const link = this.links.get(from.id)?.get(to.id);
      if (!link || link.up || link.cut || !from.alive || !to.alive) continue;
      link.up = true;
      from.linkUp(to.id);
    }
  }

  private takeDown(a: SimNode, b: SimNode): void {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const link = this.links.get(from.id)?.get(to.id);
      if (!link?.up) continue;
      link.up = false;
      from.gossip.linkDown(to.id);
    }
  }

  /** Cuts (or heals) every link between the two groups. */
  partition(groupOf: (node: SimNode) => number): void {
    for (const a of this.nodes) {
      for (const [peer, link] of this.links.get(a.id) ?? []) {
        const b = this.byId.get(peer) as SimNode;
        if (groupOf(a) === groupOf(b)) continue;
        link.cut = true;
        this.takeDown(a, b);
      }
    }
  }

  heal(): void {
    for (const a of this.nodes) {
      for (const [peer, link] of this.links.get(a.id) ?? []) {
        if (!link.cut) continue;
        link.cut = false;
        const b = this.byId.get(peer) as SimNode;
        this.clock.after(2 * this.network.latencyMs + this.random.next() * 1000, () => this.bringUp(a, b));
      }
    }
  }

  /** A node goes away (power cut: its links drop) or comes back (links come up again, it catches up). */
  setAlive(node: SimNode, alive: boolean): void {
    if (node.alive === alive) return;
    node.alive = alive;
    for (const [peer] of this.links.get(node.id) ?? []) {
      const other = this.byId.get(peer) as SimNode;
      if (alive) this.clock.after(2 * this.network.latencyMs, () => this.bringUp(node, other));
      else this.takeDown(node, other);
    }
  }

  isUp(node: SimNode, peer: string): boolean {
    return this.links.get(node.id)?.get(peer)?.up === true;
  }

  linksOf(node: SimNode): [string, boolean][] {
    return [...(this.links.get(node.id) ?? [])].map(([peer, link]) => [peer, link.up]);
  }

  /** One message on the link from `from` to `peer`: encoded, counted, delayed, maybe lost, decoded at the other end. */
  send(from: SimNode, peer: string, header: MeshHeader, lines: readonly Buffer[] = []): boolean {
    const link = this.links.get(from.id)?.get(peer);
    if (!link?.up || !from.alive) return false;
    if (from.older && header.t === 'sum') return true;
    const payload = encodeMeshMessage(header, lines);
    this.traffic.messages++;
    this.traffic.bytes += payload.length;
    const kind = (this.traffic.byType[header.t] ??= { messages: 0, bytes: 0 });
    kind.messages++;
    kind.bytes += payload.length;
    if (this.random.next() < this.network.loss || this.lose?.(from, peer, header) === true) {
      this.traffic.lost++;
      return true;
    }
    const to = this.byId.get(peer) as SimNode;
    const now = this.clock.now();
    link.due = Math.max(link.due, now + this.network.latencyMs + this.random.next() * this.network.jitterMs);
    this.clock.after(link.due - now, () => {
      const back = this.links.get(from.id)?.get(peer);
      if (!back?.up || !to.alive) return;
      void to.receive(from.id, payload).catch(() => to.counters.increment('sim.errors'));
    });
    return true;
  }

  /** Each entry's signature is checked once in the process: every node would get the same answer. */
  verify(entry: FeedEntry): FeedEntry {
    if (this.verified.has(entry.sig)) return entry;
    verifyEntry(entry);
    this.verified.add(entry.sig);
    return entry;
  }

  /** Whether every live node holds every origin up to the head its origin holds. */
  converged(): boolean {
    const heads = this.nodes.map((n) => n.store.head(n.id).seq);
    return this.nodes.every((n) => !n.alive || this.nodes.every((o, i) => (heads[i] ?? 0) === 0 || n.store.head(o.id).seq >= (heads[i] ?? 0)));
  }

  counter(name: string): number {
    return this.nodes.reduce((sum, n) => sum + (n.counters.snapshot()[name] ?? 0), 0);
  }

  duplicates(): number {
    return this.nodes.reduce((sum, n) => sum + n.store.duplicates, 0);
  }
}

/** A connected random graph where each node has about `degree` neighbours (a ring for connectivity, plus random chords). */
export function randomMesh(sim: MeshSim, degree: number, seed = 7): { edges: number; diameter: number } {
  const random = new SeededRandom(seed);
  const n = sim.nodes.length;
  const adj = Array.from({ length: n }, () => new Set<number>());
  const add = (i: number, j: number) => {
    if (i === j || adj[i]?.has(j)) return;
    adj[i]?.add(j);
    adj[j]?.add(i);
  };
  for (let i = 0; i < n; i++) add(i, (i + 1) % n);
  for (let tries = 0; tries < n * degree * 4; tries++) {
    const i = Math.floor(random.next() * n);
    const j = Math.floor(random.next() * n);
    if ((adj[i]?.size ?? 0) < degree && (adj[j]?.size ?? 0) < degree) add(i, j);
  }
  let edges = 0;
  for (let i = 0; i < n; i++) for (const j of adj[i] ?? []) if (i < j) { sim.connect(sim.nodes[i] as SimNode, sim.nodes[j] as SimNode); edges++; }
  return { edges, diameter: diameter(adj) };
}

function diameter(adj: readonly Set<number>[]): number {
  let worst = 0;
  for (let s = 0; s < adj.length; s++) {
    const dist = new Array<number>(adj.length).fill(-1);
    dist[s] = 0;
    const queue = [s];
    for (let q = 0; q < queue.length; q++) {
      const u = queue[q] as number;
      for (const v of adj[u] ?? []) if (dist[v] === -1) { dist[v] = (dist[u] ?? 0) + 1; queue.push(v); }
    }
    worst = Math.max(worst, ...dist);
  }
  return worst;
}
