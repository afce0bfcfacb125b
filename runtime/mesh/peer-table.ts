/**
 * What this node knows of each peer: what it holds (its have-vector, raised
 * by every entry it sends or is sent), when it was last heard, the
 * online/offline it announced, and which certificates it already has.
 */
import type { HaveVector } from './mesh-protocol.js';
import type { LinkState } from './peer-link.js';

export interface PeerView {
  have: HaveVector;
  lastSeen: number | undefined;
  /** online/offline as last published under the peer's state topic on our broker (by anyone allowed to: not proof). */
  announced: string | undefined;
  /** When that was seen here. */
  announcedAt: number | undefined;
  /**
   * Certificates sent on the current link and when: not sent again for a
   * while, but counted as delivered only once the peer shows it holds that
   * origin (certsHeld), since a message can be refused on the way.
   */
  certsSent: Map<string, number>;
  /** Origins the peer showed it holds (stated in hello/have, or sent us entries of): it has their certificates. */
  certsHeld: Set<string>;
  /** Origins (and seqs) the peer last said it holds whose certificates we lacked then (bounded, peer-origins.ts). */
  unknown: HaveVector;
  /** Origins this peer could not serve from where we are (both sides dropped them). */
  stuck: Set<string>;
  /** The last want that asked this peer for unknown origins. */
  probing: { id: number; origins: string[] } | undefined;
}

export interface PeerStatus {
  nodeId: string;
  name: string | undefined;
  link: LinkState | 'none';
  url: string | undefined;
  lastError: string | undefined;
  lastSeen: string | null;
  announced: string | null;
  /** Entries the peer has that we lack, per origin (we are catching up). */
  weLack: Record<string, number>;
  /** Entries we have that the peer lacks, as far as we know. */
  theyLack: Record<string, number>;
}

export class PeerTable {
  private readonly views = new Map<string, PeerView>();

  has(id: string): boolean {
    return this.views.has(id);
  }

  /** The view of `id`, made empty on first use. */
  get(id: string): PeerView {
    let view = this.views.get(id);
    if (!view) {
      view = { have: {}, lastSeen: undefined, announced: undefined, announcedAt: undefined, certsSent: new Map(), certsHeld: new Set(), stuck: new Set(), unknown: {}, probing: undefined };
      this.views.set(id, view);
    }
    return view;
  }

  /** Notes an online/offline published under the peer's state topic (a retained one arrives at subscribe). */
  announce(id: string, value: string): void {
    const view = this.get(id);
    view.announced = value;
    view.announcedAt = Date.now();
  }

  /** Takes a have-vector the peer stated (only origins we know: peer-origins.ts); an origin whose seq moved is no longer stuck. */
  mergeHave(id: string, have: HaveVector): void {
    const view = this.get(id);
    for (const [origin, seq] of Object.entries(have)) {
      if (seq > 0) view.certsHeld.add(origin);
      if (seq !== view.have[origin]) view.stuck.delete(origin);
      view.have[origin] = seq;
    }
  }

  /** The peer holds `origin` at least up to `seq`. */
  raise(id: string, origin: string, seq: number): void {
    const view = this.get(id);
    if (seq > (view.have[origin] ?? 0)) view.have[origin] = seq;
  }

  status(mine: HaveVector, describe: (id: string) => { name?: string; link?: { state: LinkState; url: string; lastError: string | undefined } }): PeerStatus[] {
    return [...this.views.entries()].map(([id, view]) => {
      const { name, link } = describe(id);
      const weLack: Record<string, number> = {};
      for (const [origin, seq] of Object.entries(view.have)) if (seq > (mine[origin] ?? 0)) weLack[origin] = seq - (mine[origin] ?? 0);
      const theyLack: Record<string, number> = {};
      for (const [origin, seq] of Object.entries(mine)) if (seq > (view.have[origin] ?? 0)) theyLack[origin] = seq - (view.have[origin] ?? 0);
      return {
        nodeId: id,
        name,
        link: link?.state ?? 'none',
        url: link?.url,
        lastError: link?.lastError,
        lastSeen: view.lastSeen === undefined ? null : new Date(view.lastSeen).toISOString(),
        announced: liveness(view, link?.state),
        weLack,
        theyLack,
      };
    });
  }
}

/**
 * What status reports as the peer's liveness. A retained `offline` under its
 * state topic is only what someone last published there (a stale will, or
 * anyone allowed to publish it): a link to the peer that is up now, or a
 * signed message heard from it since, outweighs it.
 */
function liveness(view: PeerView, link: LinkState | undefined): string | null {
  if (link === 'up') return 'online';
  if (view.announcedAt !== undefined && view.lastSeen !== undefined && view.lastSeen >= view.announcedAt) return 'online';
  return view.announced ?? null;
}
