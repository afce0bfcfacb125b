/**
 * The certificates of the nodes this node has met, kept on disk (atomic
 * write-then-rename) so a restarted node can verify forwarded entries before
 * any link is up. Only certificates that verify and are trusted under the
 * current policy are kept, and a node id can never be taken over:
 * - the first owner that certified a node id is pinned (kept on disk even
 *   when the certificate goes), and only it can re-issue;
 * - a newer certificate replaces the held one only if issued at most
 *   `maxSkewMs` ahead of our clock (no "newest forever" by a huge issuedAt);
 * - this node's own entry is never replaced from outside;
 * - an owner's signed revocation (revocation.ts) refuses the node from then on.
 *
 * members.json, v2: {"v":2,"certificates":[...],"owners":{nodeId: ownerKey},"revocations":[...]}.
 * A v1 file (a bare array) is read; its v1 certificates are dropped (counted).
 */
import { readFile } from 'node:fs/promises';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { certificateNodeId, decodeCertificate, trustOf, type NodeCertificate, type TrustPolicy, type TrustVerdict } from './certificate.js';
import { decodeRevocation, revokedNodeId, type Revocation } from './revocation.js';

export interface MemberDirectoryOptions {
  file: string;
  policy: TrustPolicy;
  counters: Counters;
  /** This node's own certificate: always known. */
  self: NodeCertificate;
  now?: () => number;
  /** How far ahead of our clock a certificate's issuedAt may be. */
  maxSkewMs?: number;
  /** Node ids pinned to an owner, at most (a trusted owner could mint ids without end). */
  maxNodes?: number;
}

type Refusal = Exclude<TrustVerdict, 'trusted'> | 'owner-changed' | 'future' | 'self' | 'full';

const UNTRUSTED_BECAUSE: Record<Refusal, string> = {
  'revoked': 'its key or its owner\'s is revoked',
  'unknown-owner': 'its owner is not in mesh.trust.owners',
  'pin-mismatch': 'its key is not the one mesh.neighbours pins for it',
  'expired': 'its certificate has expired',
  'owner-changed': 'another owner certified this node id first (only that owner can re-issue it)',
  'future': 'its certificate is issued in the future (beyond mesh.tokenMaxSkew)',
  'self': 'it is a certificate for this very node, which only this node issues',
  'full': 'the member directory is full (too many node ids)',
};

/** The suffix of the `mesh.rejected.certificate_<why>` counter for a refusal. */
export function refusalCounter(err: unknown): string {
  const why = (err as { refusal?: string }).refusal;
  if (why !== undefined && why !== 'unknown-owner') return why.replace('-', '_');
  return (err as { code?: string }).code === ErrorCodes.PEER_UNTRUSTED ? 'untrusted' : 'invalid';
}

export class MemberDirectory {
  private readonly members = new Map<string, NodeCertificate>();
  /** Node id -> the owner key that first certified it. */
  private readonly pinnedOwners = new Map<string, string>();
  /** Node id -> the revocation by its pinned owner. */
  private readonly revocations = new Map<string, Revocation>();
  private writing: Promise<void> = Promise.resolve();
  private readonly selfId: string;

  constructor(private readonly options: MemberDirectoryOptions) {
    this.selfId = certificateNodeId(options.self);
  }

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  async start(): Promise<void> {
    const { counters, self } = this.options;
    this.members.set(this.selfId, self);
    this.pinnedOwners.set(this.selfId, self.owner);
    let stored: unknown;
    try {
      stored = JSON.parse(await readFile(this.options.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') counters.increment('mesh.members_file_unreadable');
    }
    const file = (Array.isArray(stored) ? { certificates: stored } : stored ?? {}) as { certificates?: unknown; owners?: unknown; revocations?: unknown };
    if (file.owners !== null && typeof file.owners === 'object') {
      const { policy } = this.options;
      for (const [nodeId, owner] of Object.entries(file.owners as Record<string, unknown>)) {
        // A pin to an owner this node no longer trusts is released: taking an owner out of the config is how a node is moved to another.
        if (typeof owner !== 'string' || !policy.owners.has(owner) || policy.revoked.has(owner)) continue;
        if (!this.pinnedOwners.has(nodeId) && this.pinnedOwners.size < this.maxNodes) this.pinnedOwners.set(nodeId, owner);
      }
    }
    for (const raw of Array.isArray(file.revocations) ? file.revocations as unknown[] : []) {
      try {
        this.applyRevocation(decodeRevocation(raw));
      } catch {
        counters.increment('mesh.members_file_unreadable');
      }
    }
    for (const raw of Array.isArray(file.certificates) ? file.certificates as unknown[] : []) {
      if ((raw as { v?: unknown } | null)?.v === 1) {
        counters.increment('mesh.members_v1_dropped'); // learned again, in v2, from the node's next hello
        continue;
      }
      try {
        this.accept(decodeCertificate(raw));
      } catch {
        counters.increment('mesh.members_file_unreadable');
      }
    }
  }

  /**
   * Verifies and remembers a certificate from the network (saved in the
   * background). Returns the node id; throws CERTIFICATE_INVALID (bad shape or
   * signature) or PEER_UNTRUSTED (with `refusal`, see refusalCounter).
   * Synchronous: the broker's CONNECT check uses it.
   */
  learn(raw: unknown): string {
    const cert = decodeCertificate(raw);
    const nodeId = certificateNodeId(cert);
    const refusal = this.refusalOf(cert, nodeId);
    if (refusal !== undefined) {
      throw Object.assign(new ApiaryError(ErrorCodes.PEER_UNTRUSTED, `node ${nodeId} (${cert.name}) is not trusted: ${UNTRUSTED_BECAUSE[refusal]}`, {
        hint: refusal === 'unknown-owner' ? `to trust it, add its owner key ${cert.owner} to mesh.trust.owners` : undefined,
      }), { refusal });
    }
    if (this.accept(cert)) void this.save();
    return nodeId;
  }

  /** Applies an owner's signed revocation (from a feed entry); true if it is new. Throws CERTIFICATE_INVALID or PEER_UNTRUSTED. */
  revoke(raw: unknown): boolean {
    const revocation = decodeRevocation(raw);
    const nodeId = revokedNodeId(revocation);
    if (!this.options.policy.owners.has(revocation.owner)) throw new ApiaryError(ErrorCodes.PEER_UNTRUSTED, `a revocation of node ${nodeId} by an owner this node does not trust`);
    const pinned = this.pinnedOwners.get(nodeId);
    if (pinned !== undefined && pinned !== revocation.owner) {
      throw new ApiaryError(ErrorCodes.PEER_UNTRUSTED, `a revocation of node ${nodeId} by an owner other than the one that certified it`);
    }
    if (!this.applyRevocation(revocation)) return false;
    void this.save();
    return true;
  }

  /** The trusted certificate of a node, if any (not expired, not revoked). */
  get(nodeId: string): NodeCertificate | undefined {
    const cert = this.members.get(nodeId);
    return cert && this.verdictOf(cert, nodeId) === 'trusted' ? cert : undefined;
  }

  verdict(nodeId: string, key: string): TrustVerdict | 'unknown-node' {
    const cert = this.members.get(nodeId);
    if (!cert) return this.options.policy.revoked.has(key) ? 'revoked' : 'unknown-node';
    if (cert.node !== key) return 'unknown-node';
    return this.verdictOf(cert, nodeId);
  }

  all(): NodeCertificate[] {
    return [...this.members].filter(([nodeId, cert]) => this.verdictOf(cert, nodeId) === 'trusted').map(([, cert]) => cert);
  }

  async stop(): Promise<void> {
    await this.writing;
  }

  private get maxNodes(): number {
    return this.options.maxNodes ?? 4096;
  }

  /** `nodeId` is the certificate's (passed in: deriving it hashes the key, and this runs for every entry received). */
  private verdictOf(cert: NodeCertificate, nodeId: string): TrustVerdict {
    const revocation = this.revocations.get(nodeId);
    if (revocation && revocation.owner === cert.owner && revocation.node === cert.node) return 'revoked';
    return trustOf(cert, this.options.policy, this.now, nodeId);
  }

  private refusalOf(cert: NodeCertificate, nodeId: string): Refusal | undefined {
    if (nodeId === this.selfId) return cert.sig === this.options.self.sig ? undefined : 'self';
    const verdict = this.verdictOf(cert, nodeId);
    if (verdict !== 'trusted') return verdict;
    const pinned = this.pinnedOwners.get(nodeId);
    if (pinned !== undefined && pinned !== cert.owner) return 'owner-changed';
    if (cert.issuedAt > this.now + (this.options.maxSkewMs ?? 300_000)) return 'future';
    if (pinned === undefined && this.pinnedOwners.size >= this.maxNodes) return 'full';
    return undefined;
  }

  /** Keeps a trusted certificate, the newest one per node by its pinned owner. True if anything changed. */
  private accept(cert: NodeCertificate): boolean {
    const nodeId = certificateNodeId(cert);
    if (this.refusalOf(cert, nodeId) !== undefined || nodeId === this.selfId) return false;
    const held = this.members.get(nodeId);
    if (held && held.issuedAt >= cert.issuedAt) return false;
    this.members.set(nodeId, cert);
    this.pinnedOwners.set(nodeId, cert.owner);
    return true;
  }

  private applyRevocation(revocation: Revocation): boolean {
    const nodeId = revokedNodeId(revocation);
    const held = this.revocations.get(nodeId);
    if (held && held.owner === revocation.owner) return false;
    if (!held && this.revocations.size >= this.maxNodes) {
      this.options.counters.increment('mesh.rejected.revocation_full');
      return false;
    }
    this.revocations.set(nodeId, revocation);
    return true;
  }

  private save(): Promise<void> {
    const file = {
      v: 2,
      certificates: [...this.members.values()].filter((c) => certificateNodeId(c) !== this.selfId),
      owners: Object.fromEntries(this.pinnedOwners),
      revocations: [...this.revocations.values()],
    };
    const text = `${JSON.stringify(file, null, 1)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.options.file, text)).catch(() => this.options.counters.increment('mesh.members_file_write_errors'));
    return this.writing;
  }
}
