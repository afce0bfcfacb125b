/**
 * Forks as proof (issue 10, finding 12). An origin that signs two histories
 * (two different entries for one seq, or an entry whose `prev` is not the
 * hash of the entry before it) is proven to have done so by those two signed
 * entries, which anyone can check with the origin's key alone. The node that
 * meets a fork sends the proof to its peers, which check it, keep it and pass
 * it on (and give every peer that links later the proofs they hold), so the
 * origin is quarantined on every node, not only on the one that saw both
 * versions: its entries are refused from then on (what is held is kept), its
 * shared-state edits have no effect, and nobody asks for it any more.
 *
 * On disk: <dataDir>/mesh/quarantine.json, [{origin, a, b}] with `a` and
 * `b` the two entries as sent on the wire; re-checked at start. To lift a
 * quarantine (the owner gave the node a new key, or restored it knowingly),
 * remove its record from the file while the node is stopped.
 */
import { readFile } from 'node:fs/promises';
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { decodeEntry, encodeEntry, entryHash, type FeedEntry } from './feed-entry.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshHeader } from './mesh-protocol.js';

/** Proofs kept; each is two entries (at most 128 KiB), and only for trusted origins. */
export const MAX_FORK_PROOFS = 64;

export interface ForkProof {
  readonly a: FeedEntry;
  readonly b: FeedEntry;
}

/** True if `a` and `b` (already verified) prove that their origin signed two histories. */
export function provesFork(a: FeedEntry, b: FeedEntry): boolean {
  if (a.origin !== b.origin || a.key !== b.key) return false;
  const [first, second] = a.seq <= b.seq ? [a, b] : [b, a];
  if (first.seq === second.seq) return entryHash(first) !== entryHash(second);
  return second.seq === first.seq + 1 && second.prev !== entryHash(first);
}

/** Decodes and verifies a proof from untrusted bytes; undefined if it proves nothing. */
export function decodeForkProof(a: Uint8Array, b: Uint8Array): ForkProof | undefined {
  try {
    const proof = { a: decodeEntry(a), b: decodeEntry(b) };
    return provesFork(proof.a, proof.b) ? proof : undefined;
  } catch {
    return undefined;
  }
}

export class Quarantine {
  private readonly proofs = new Map<string, ForkProof>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: { file: string; counters: Counters }) {}

  async start(): Promise<void> {
    let stored: unknown;
    try {
      stored = JSON.parse(await readFile(this.options.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.counters.increment('mesh.quarantine_file_unreadable');
      return;
    }
    for (const record of Array.isArray(stored) ? stored.slice(0, MAX_FORK_PROOFS) : []) {
      const { a, b } = (record ?? {}) as { a?: unknown; b?: unknown };
      const proof = typeof a === 'string' && typeof b === 'string' ? decodeForkProof(Buffer.from(a), Buffer.from(b)) : undefined;
      if (proof) this.proofs.set(proof.a.origin, proof);
      else this.options.counters.increment('mesh.quarantine_file_unreadable');
    }
  }

  async stop(): Promise<void> {
    await this.writing;
  }

  has(origin: string): boolean {
    return this.proofs.has(origin);
  }

  all(): ForkProof[] {
    return [...this.proofs.values()];
  }

  /** Keeps a (checked) proof; true if its origin was not quarantined yet. Saved in the background. */
  add(proof: ForkProof): boolean {
    const origin = proof.a.origin;
    if (this.proofs.has(origin)) return false;
    if (this.proofs.size >= MAX_FORK_PROOFS) {
      this.options.counters.increment('mesh.rejected.fork_proof_budget');
      return false;
    }
    this.proofs.set(origin, proof);
    this.options.counters.increment('mesh.forks_quarantined');
    const text = `${JSON.stringify(this.all().map((p) => ({ origin: p.a.origin, a: encodeEntry(p.a).toString('utf8'), b: encodeEntry(p.b).toString('utf8') })), null, 1)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.options.file, text)).catch(() => this.options.counters.increment('mesh.quarantine_file_write_errors'));
    return true;
  }
}

export interface ForkGossipOptions {
  quarantine: Quarantine;
  directory: MemberDirectory;
  counters: Counters;
  logger: Logger;
  maxHops: number;
  /** The peers this node has a link to. */
  peers: () => Iterable<string>;
  send: (peerId: string, header: MeshHeader, lines: readonly Buffer[]) => void;
}

/** How proofs travel: from the node that meets a fork to every peer, hop by hop, and to every peer that links later. */
export class ForkGossip {
  constructor(private readonly options: ForkGossipOptions) {}

  /** The feed store met a fork: the entry it holds and the one received. */
  found(held: FeedEntry, received: FeedEntry): void {
    this.accept({ a: held, b: received }, undefined, 0);
  }

  /** A `fork` message from a peer (mesh-protocol.ts: exactly two entry lines, and maybe the origin's certificate). */
  received(from: string, header: Extract<MeshHeader, { t: 'fork' }>, lines: readonly Buffer[], learn: (cert: unknown) => void): void {
    const proof = decodeForkProof(lines[0] ?? Buffer.alloc(0), lines[1] ?? Buffer.alloc(0));
    if (!proof) {
      this.options.counters.increment('mesh.rejected.fork_proof_invalid');
      return;
    }
    if (header.cert !== undefined) learn(header.cert);
    this.accept(proof, from, header.hops + 1);
  }

  /** A link came up: the peer gets every proof this node holds. */
  linked(peerId: string): void {
    for (const proof of this.options.quarantine.all()) this.send(peerId, proof, 0);
  }

  /** Quarantines a (trusted) origin proven to have forked, and passes the proof on. */
  private accept(proof: ForkProof, from: string | undefined, hops: number): void {
    const { origin, key, seq } = proof.a;
    if (this.options.directory.verdict(origin, key) !== 'trusted') {
      this.options.counters.increment('mesh.rejected.fork_proof_untrusted');
      return;
    }
    if (!this.options.quarantine.add(proof)) return;
    this.options.logger.warn({ origin, seq, from }, 'a node signed two histories of its feed: quarantined, and the proof sent to every peer');
    if (hops < this.options.maxHops) for (const peerId of this.options.peers()) if (peerId !== from) this.send(peerId, proof, hops);
  }

  private send(peerId: string, proof: ForkProof, hops: number): void {
    const cert = this.options.directory.get(proof.a.origin);
    this.options.send(peerId, { t: 'fork', hops, ...(cert ? { cert } : {}) }, [encodeEntry(proof.a), encodeEntry(proof.b)]);
  }
}
