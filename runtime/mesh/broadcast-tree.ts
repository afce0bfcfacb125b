/**
 * Epidemic broadcast trees (Plumtree: Leitão, Pereira, Rodrigues, "Epidemic
 * Broadcast Trees", SRDS 2007), for the feeds' live gossip. Each link is
 * eager (new entries are pushed whole) or lazy (only "I have" announcements
 * go, batched). All links start eager; an eager push that brings nothing new
 * means the sender is a redundant path, so the receiver prunes the link to
 * lazy, on both ends. The eager links then thin out to a spanning tree: in
 * steady state each node receives each entry about once, whoever wrote it
 * (a tree of symmetric links carries every origin's entries).
 *
 * A broken tree heals from the lazy links: an announcement of an entry that
 * does not arrive by the eager path within graftTimeoutMs grafts the
 * announcer (the link turns eager and the entries are pushed), one announcer
 * after another. Anti-entropy (have/want) stays the safety net beneath.
 *
 * Entries of one origin are a sequence, so "I have" is a have-vector delta
 * (origin -> highest seq), not a list of message ids. A peer that never
 * spoke this protocol (an older node) is kept eager: it is never pruned.
 *
 * Pure state: the mesh sends what this decides; time comes from `scheduler`,
 * so the same code runs in the simulation (test/sim) as on a board.
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
  sendPrune(peer: string): void;
  /** Graft `peer`: it turns the link eager and pushes `origin`'s entries from `from`. */
  sendGraft(peer: string, want: Readonly<Record<string, number>>): void;
  /** Counter names are prefixed mesh.tree. */
  count(name: string, by?: number): void;
}

/** Origins awaited at once (announced, not yet here): a peer announcing more is not followed further. */
export const MAX_AWAITED_ORIGINS = 4096;

interface Awaited {
  seq: number;
  /** Peers that announced it, in order; the first is grafted first. */
  announcers: string[];
  cancel: () => void;
}

export class BroadcastTree {
  private readonly eager = new Set<string>();
  private readonly lazy = new Set<string>();
  /** Peers that spoke this protocol: only they may be made lazy. */
  private readonly capable = new Set<string>();
  private readonly announcements = new Map<string, { have: Record<string, number>; cancel: () => void }>();
  private readonly awaited = new Map<string, Awaited>();
  private stopped = false;

  constructor(private readonly options: BroadcastTreeOptions) {}

  /** A link came up: eager until a duplicate says otherwise. */
  peerUp(peer: string): void {
    if (this.lazy.has(peer)) return;
    this.eager.add(peer);
  }

  peerDown(peer: string): void {
    this.eager.delete(peer);
    this.lazy.delete(peer);
    this.announcements.get(peer)?.cancel();
    this.announcements.delete(peer);
    for (const awaited of this.awaited.values()) awaited.announcers = awaited.announcers.filter((p) => p !== peer);
  }

  /** The peer spoke this protocol (an announcement, prune or graft): it may be made lazy. */
  speaks(peer: string): void {
    this.capable.add(peer);
  }

  isEager(peer: string): boolean {
    return this.eager.has(peer) || (!this.lazy.has(peer) && !this.capable.has(peer));
  }

  /**
   * Entries this node now holds, first received from `from` (undefined: its
   * own). Returns the peers to push them to; the lazy peers are announced
   * them (batched). Entries that were awaited no longer are.
   */
  spread(entries: readonly { origin: string; seq: number }[], from: string | undefined, linked: Iterable<string>): string[] {
    const top: Record<string, number> = {};
    for (const e of entries) if (e.seq > (top[e.origin] ?? 0)) top[e.origin] = e.seq;
    for (const [origin, seq] of Object.entries(top)) {
      const awaited = this.awaited.get(origin);
      if (awaited && seq >= awaited.seq) {
        awaited.cancel();
        this.awaited.delete(origin);
      }
    }
    const eager: string[] = [];
    for (const peer of linked) {
      if (peer === from) continue;
      if (this.isEager(peer)) eager.push(peer);
      else this.announce(peer, top);
    }
    return eager;
  }

  /** An eager push from `from` brought nothing new: a redundant path, pruned to lazy on both ends. */
  duplicate(from: string): void {
    if (!this.capable.has(from) || !this.eager.has(from)) return;
    this.eager.delete(from);
    this.lazy.add(from);
    this.options.count('mesh.tree.pruned');
    this.options.sendPrune(from);
  }

  onPrune(from: string): void {
    this.speaks(from);
    if (this.eager.delete(from)) this.lazy.add(from);
  }

  /** `from` grafted us: it missed entries on the tree, so the link is eager again (the mesh pushes what it asked). */
  onGraft(from: string): void {
    this.speaks(from);
    this.lazy.delete(from);
    this.eager.add(from);
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
      const entry: Awaited = { seq, announcers: [from], cancel: () => undefined };
      entry.cancel = this.options.scheduler.after(this.options.graftTimeoutMs, () => this.graft(origin));
      this.awaited.set(origin, entry);
    }
  }

  /** The tree did not bring `origin` in time: graft the next announcer, and wait again (for the one after it). */
  private graft(origin: string): void {
    const awaited = this.awaited.get(origin);
    if (!awaited || this.stopped) return;
    const head = this.options.head(origin);
    if (head >= awaited.seq) {
      this.awaited.delete(origin);
      return;
    }
    const peer = awaited.announcers.shift();
    if (peer === undefined) {
      this.awaited.delete(origin); // nobody left to ask: anti-entropy finds it
      return;
    }
    this.lazy.delete(peer);
    this.eager.add(peer);
    this.options.count('mesh.tree.grafts');
    this.options.sendGraft(peer, { [origin]: head + 1 });
    awaited.cancel = this.options.scheduler.after(this.options.graftTimeoutMs / 2, () => this.graft(origin));
  }

  private announce(peer: string, top: Readonly<Record<string, number>>): void {
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
    for (const [origin, seq] of Object.entries(top)) if (seq > (pending.have[origin] ?? 0)) pending.have[origin] = seq;
  }

  /** For status: which links are eager and which lazy. */
  status(): { eager: string[]; lazy: string[]; awaited: number } {
    return { eager: [...this.eager].sort(), lazy: [...this.lazy].sort(), awaited: this.awaited.size };
  }

  stop(): void {
    this.stopped = true;
    for (const pending of this.announcements.values()) pending.cancel();
    this.announcements.clear();
    for (const awaited of this.awaited.values()) awaited.cancel();
    this.awaited.clear();
  }
}
