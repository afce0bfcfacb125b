/**
 * Which peers reconcile have-vectors by ranges (have-reconciliation.ts),
 * remembered across restarts in `mesh/reconciling-peers.json`. Without it
 * a node's first hello to each peer after a restart (a power cut on a
 * board) carried its whole have-vector, a cost that grows with the origins
 * of the mesh, not with what differs (issue 16, point 2). A peer put back to
 * an older version is found as before (a hello with no sum after it) and
 * forgotten here too.
 *
 * Small and rarely written: once per peer when it is first seen reconciling,
 * atomically (write-then-rename). A file that cannot be read is counted
 * (`mesh.reconciling_peers.invalid`) and the node starts as if it had none:
 * it costs full have-vectors once, never an entry.
 */
import { readFile } from 'node:fs/promises';
import type { Counters } from '../counters.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

/** Peers remembered: more than a node links to; the oldest go first. */
export const MAX_RECONCILING_PEERS = 1024;
const NODE_ID = /^[a-z2-7]{12}$/;

interface SavedPeers {
  v: 1;
  peers: string[];
}

export class ReconcilingPeers {
  /** Insertion order is recency: a peer seen again moves to the end. */
  private readonly peers = new Set<string>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string, private readonly counters: Counters) {}

  /** The peers of the last run (none if the file is missing or not one this version wrote). */
  async load(): Promise<readonly string[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return []; // a first start, or a data dir from before this file
    }
    let saved: unknown;
    try {
      saved = JSON.parse(text);
    } catch {
      saved = undefined;
    }
    const peers = (saved as Partial<SavedPeers> | undefined)?.peers;
    if ((saved as Partial<SavedPeers> | undefined)?.v !== 1 || !Array.isArray(peers) || !peers.every((p) => typeof p === 'string' && NODE_ID.test(p))) {
      this.counters.increment('mesh.reconciling_peers.invalid');
      return [];
    }
    for (const peer of peers.slice(-MAX_RECONCILING_PEERS)) this.peers.add(peer);
    return [...this.peers];
  }

  /** `peer` reconciles (it sent a sum), or no longer does (a hello with no sum after it). */
  set(peer: string, reconciles: boolean): void {
    if (reconciles === this.peers.has(peer)) return;
    if (reconciles) {
      this.peers.add(peer);
      for (const oldest of this.peers) {
        if (this.peers.size <= MAX_RECONCILING_PEERS) break;
        this.peers.delete(oldest);
      }
    } else {
      this.peers.delete(peer);
    }
    const text = `${JSON.stringify({ v: 1, peers: [...this.peers] } satisfies SavedPeers)}\n`;
    // One write at a time, each of the whole set as it is then: the last one wins.
    this.writing = this.writing.then(() => writeFileAtomic(this.file, text)).catch(() => this.counters.increment('mesh.reconciling_peers.write_errors'));
  }

  /** Waits for the last write (at stop). */
  flush(): Promise<void> {
    return this.writing;
  }
}
