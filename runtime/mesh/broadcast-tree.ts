/**
 * Epidemic broadcast trees (Plumtree: Leitão, Pereira, Rodrigues, "Epidemic
 * Broadcast Trees", SRDS 2007), for the feeds' live gossip: one tree per
 * origin, as riak_core's broadcast keeps one per root. For each origin a
 * link is eager (its new entries are pushed whole) or lazy (only "I have"
 * announcements go, batched). All links start eager; an eager push that
 * brings nothing new means the sender is a redundant path for that origin,
 * so the receiver prunes the link to lazy for it, on both ends. The eager
 * links of an origin thin out to a spanning tree rooted at it: in steady
 * state each node receives each entry about once.
 *
 * One tree per origin, not one shared by all: prunes made at once for
 * different origins' duplicates can otherwise cut two links of one cycle and
 * split the shared tree, and the grafts that mend it make new cycles, so the
 * tree never settles (the simulation, test/sim, showed it at 20 nodes).
 *
 * A broken tree heals from the lazy links: an announcement of an entry that
 * does not arrive by the eager path within graftTimeoutMs grafts the
 * announcer (the link turns eager for that origin and the entries are
 * pushed), one announcer after another. Anti-entropy (have/want) stays the
 * safety net beneath.
 *
 * Pull first: a first miss is more often one lost push than a broken link,
 * and every node of the subtree below a lost push misses it. Grafting them
 * all made each grafted link carry the next entries by a second path until a
 * duplicate pruned it (2.8 to 3.7 duplicates per entry written at 500 nodes
 * with 0.1% loss, test/sim). So a first miss only asks the announcer for the
 * entries (a want; its answer is not spread on) and the tree stays as it is;
 * the origin's next miss with no push between (the tree still does not
 * deliver it), or a miss after a link went down (until a link comes up),
 * grafts. 0.01 to 0.07 duplicates per entry there now.
 *
 * Entries of one origin are a sequence, so "I have" is a have-vector delta
 * (origin -> highest seq), not a list of message ids. A peer that never
 * spoke this protocol (an older node) is kept eager: it is never pruned.
 *
 * Pure state: the mesh sends what this decides; time comes from `scheduler`,
 * so the same code runs in the simulation as on a board.
 */
export interface TreeScheduler {
  now(): number;
  /** Calls `fn` once after `ms`; returns a cancel. */
  after(ms: number, fn: () => void): () => void;
}

export interface BroadcastTreeOptions {
  scheduler: TreeScheduler;
  /** How long an announced entry may take by the eager path before the announcer is grafted. */
  graftTimeoutMs: number;
  /** How long announcements to a lazy peer are gathered into one message. */
  announceDelayMs: number;
  /** The highest seq of `origin` this node holds without a gap (0: none). */
  head(origin: string): number;
  sendAnnounce(peer: string, have: Readonly<Record<string, number>>): void;
  sendPrune(peer: string, origins: readonly string[]): void;
  /** Graft `peer`: it turns the link eager for these origins and pushes their entries from the seqs given. */
  sendGraft(peer: string, want: Readonly<Record<string, number>>): void;
  /** Ask `peer` for these origins' entries from the seqs given, without changing the tree (a want). */
  sendPull(peer: string, want: Readonly<Record<string, number>>): void;
  /** Counter names are prefixed mesh.tree. */
  count(name: string, by?: number): void;
}

/** Origins awaited at once (announced, not yet here): a peer announcing more is not followed further. */
export const MAX_AWAITED_ORIGINS = 4096;
/** Origins with a tree of their own (a lazy link): past it, a new origin's links all stay eager (counted). */
export const MAX_TREES = 4096;
/** Origins named in one prune. */
export const MAX_PRUNE_ORIGINS = 256;

interface Awaited {
  seq: number;
  /** Peers that announced it, in order; the first is pulled from, then grafted first. */
  announcers: string[];
  /** Pulled once already: the next step grafts. */
  pulled: boolean;
  cancel: () => void;
}

export class BroadcastTree {
  /** origin -> the links that are lazy for it; every other link is eager. */
  private readonly lazy = new Map<string, Set<string>>();
  /** Peers that spoke this protocol: only they may be made lazy. */
  private readonly capable = new Set<string>();
  private readonly announcements = new Map<string, { have: Record<string, number>; cancel: () => void }>();
  private readonly awaited = new Map<string, Awaited>();
  /** Origins last missed and pulled, with no push of theirs since: their next miss grafts (bounded as awaited is). */
  private readonly pulledLast = new Set<string>();
  /** Origins whose eager link went down: their next miss grafts at once (bounded by the trees). */
  private readonly graftNext = new Set<string>();
  private stopped = false;

  constructor(private readonly options: BroadcastTreeOptions) {}

  /** A link came up: eager for every origin until duplicates say otherwise (so a link lost before is made up for). */
  peerUp(peer: string): void {
    for (const lazy of this.lazy.values()) lazy.delete(peer);
    this.graftNext.clear();
  }

  peerDown(peer: string): void {
    // Whether the link was the origin's parent is not known here: any origin it was eager for repairs by a graft.
    for (const [origin, lazy] of this.lazy) if (!lazy.delete(peer)) this.graftNext.add(origin);
    this.announcements.get(peer)?.cancel();
    this.announcements.delete(peer);
    for (const awaited of this.awaited.values()) awaited.announcers = awaited.announcers.filter((p) => p !== peer);
  }

  /** The peer spoke this protocol (an announcement, prune or graft): it may be made lazy. */
  speaks(peer: string): void {
    this.capable.add(peer);
  }

  /** Whether the peer spoke this protocol (a node of an older version ignores its messages). */
  knows(peer: string): boolean {
    return this.capable.has(peer);
  }

  isEager(origin: string, peer: string): boolean {
    return !this.lazy.get(origin)?.has(peer);
  }

  /**
   * Entries this node now holds, first received from `from` (undefined: its
   * own). Returns, per peer, the entries to push it; the peers lazy for an
   * origin are announced its entries (batched). Entries that were awaited no
   * longer are.
   */
  spread(entries: readonly { origin: string; seq: number }[], from: string | undefined, linked: readonly string[]): Map<string, number[]> {
    const top: Record<string, number> = {};
    const push = new Map<string, number[]>();
    for (const [i, e] of entries.entries()) {
      if (e.seq > (top[e.origin] ?? 0)) top[e.origin] = e.seq;
      const lazy = this.lazy.get(e.origin);
      for (const peer of linked) {
        if (peer === from || lazy?.has(peer)) continue;
        let list = push.get(peer);
        if (!list) push.set(peer, (list = []));
        list.push(i);
      }
    }
    for (const [origin, seq] of Object.entries(top)) {
      // The tree delivers the origin: a later miss is a lost message again, pulled first.
      this.pulledLast.delete(origin);
      this.graftNext.delete(origin);
      const awaited = this.awaited.get(origin);
      if (awaited && seq >= awaited.seq) {
        awaited.cancel();
        this.awaited.delete(origin);
      }
      for (const peer of this.lazy.get(origin) ?? []) if (peer !== from && linked.includes(peer)) this.announce(peer, origin, seq);
    }
    return push;
  }

  /** An eager push from `from` brought nothing new for these origins: a redundant path for them, pruned to lazy on both ends. */
  duplicate(from: string, origins: readonly string[]): void {
    if (!this.capable.has(from)) return;
    let fresh = 0;
    // A link already lazy here that still pushes: our prune was lost (or crossed a graft). Said again.
    const pruned = origins.filter((origin) => {
      if (this.makeLazy(origin, from)) return ++fresh > 0;
      return this.lazy.get(origin)?.has(from) === true;
    }).slice(0, MAX_PRUNE_ORIGINS);
    if (pruned.length === 0) return;
    if (fresh > 0) this.options.count('mesh.tree.pruned', fresh);
    if (pruned.length > fresh) this.options.count('mesh.tree.prunes_repeated', pruned.length - fresh);
    this.options.sendPrune(from, pruned);
  }

  onPrune(from: string, origins: readonly string[]): void {
    this.speaks(from);
    for (const origin of origins) this.makeLazy(origin, from);
  }

  /** `from` grafted us: it missed these origins' entries on the tree, so the link is eager for them again (the mesh pushes what it asked). */
  onGraft(from: string, origins: readonly string[]): void {
    this.speaks(from);
    for (const origin of origins) this.lazy.get(origin)?.delete(from);
  }

  /** `from` announced what it holds: what we lack is awaited, and grafted if the tree does not bring it in time. */
  onAnnounce(from: string, have: Readonly<Record<string, number>>): void {
    this.speaks(from);
    for (const [origin, seq] of Object.entries(have)) {
      if (this.options.head(origin) >= seq) continue;
      const awaited = this.awaited.get(origin);
      if (awaited) {
        if (seq > awaited.seq) awaited.seq = seq;
        if (!awaited.announcers.includes(from)) awaited.announcers.push(from);
        continue;
      }
      if (this.awaited.size >= MAX_AWAITED_ORIGINS) {
        this.options.count('mesh.tree.awaited_full');
        continue;
      }
      const entry: Awaited = { seq, announcers: [from], pulled: false, cancel: () => undefined };
      entry.cancel = this.options.scheduler.after(this.options.graftTimeoutMs, () => this.repair(origin));
      this.awaited.set(origin, entry);
    }
  }

  /** For status: how many origins have a tree, and for how many each peer is lazy. */
  status(): { trees: number; lazy: Record<string, number>; awaited: number } {
    const lazy: Record<string, number> = {};
    for (const peers of this.lazy.values()) for (const peer of peers) lazy[peer] = (lazy[peer] ?? 0) + 1;
    return { trees: this.lazy.size, lazy, awaited: this.awaited.size };
  }

  /** One origin's tree: which of `linked` are eager and which lazy. */
  treeOf(origin: string, linked: readonly string[]): { eager: string[]; lazy: string[] } {
    const lazy = this.lazy.get(origin);
    return { eager: linked.filter((p) => !lazy?.has(p)).sort(), lazy: linked.filter((p) => lazy?.has(p)).sort() };
  }

  stop(): void {
    this.stopped = true;
    for (const pending of this.announcements.values()) pending.cancel();
    this.announcements.clear();
    for (const awaited of this.awaited.values()) awaited.cancel();
    this.awaited.clear();
    this.pulledLast.clear();
    this.graftNext.clear();
  }

  private makeLazy(origin: string, peer: string): boolean {
    let lazy = this.lazy.get(origin);
    if (!lazy) {
      if (this.lazy.size >= MAX_TREES) {
        this.options.count('mesh.tree.trees_full');
        return false;
      }
      this.lazy.set(origin, (lazy = new Set()));
    }
    if (lazy.has(peer)) return false;
    lazy.add(peer);
    return true;
  }

  /**
   * The tree did not bring `origin` in time: a first miss pulls from the first announcer; a miss in a row (or after a
   * link went down), or a pull not answered in time, grafts the next announcer, and waits again (for the one after it).
   */
  private repair(origin: string): void {
    const awaited = this.awaited.get(origin);
    if (!awaited || this.stopped) return;
    const head = this.options.head(origin);
    if (head >= awaited.seq) {
      this.awaited.delete(origin);
      return;
    }
    const first = awaited.announcers[0];
    if (!awaited.pulled && first !== undefined && !this.pulledLast.has(origin) && !this.graftNext.has(origin)) {
      awaited.pulled = true;
      if (this.pulledLast.size >= MAX_AWAITED_ORIGINS) this.pulledLast.delete(this.pulledLast.values().next().value as string);
      this.pulledLast.add(origin);
      this.options.count('mesh.tree.pulls');
      this.options.sendPull(first, { [origin]: head + 1 });
      awaited.cancel = this.options.scheduler.after(this.options.graftTimeoutMs / 2, () => this.repair(origin));
      return;
    }
    awaited.pulled = true;
    this.pulledLast.delete(origin);
    this.graftNext.delete(origin);
    const peer = awaited.announcers.shift();
    if (peer === undefined) {
      this.awaited.delete(origin); // nobody left to ask: anti-entropy finds it
      return;
    }
    this.lazy.get(origin)?.delete(peer);
    this.options.count('mesh.tree.grafts');
    this.options.sendGraft(peer, { [origin]: head + 1 });
    awaited.cancel = this.options.scheduler.after(this.options.graftTimeoutMs / 2, () => this.repair(origin));
  }

  private announce(peer: string, origin: string, seq: number): void {
    let pending = this.announcements.get(peer);
    if (!pending) {
      const have: Record<string, number> = {};
      pending = {
        have,
        cancel: this.options.scheduler.after(this.options.announceDelayMs, () => {
          this.announcements.delete(peer);
          if (!this.stopped && Object.keys(have).length > 0) this.options.sendAnnounce(peer, have);
        }),
      };
      this.announcements.set(peer, pending);
    }
    if (seq > (pending.have[origin] ?? 0)) pending.have[origin] = seq;
  }
}
