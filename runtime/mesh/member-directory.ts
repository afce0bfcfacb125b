/**
 * The certificates of the nodes this node has met, kept on disk (atomic
 * write-then-rename) so a restarted node can verify forwarded entries before
 * any link is up. Only certificates that verify and are trusted under the
 * current policy are kept; a revocation in the config takes effect at start.
 */
import { readFile } from 'node:fs/promises';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { certificateNodeId, decodeCertificate, trustOf, type NodeCertificate, type TrustPolicy, type TrustVerdict } from './certificate.js';

export interface MemberDirectoryOptions {
  file: string;
  policy: TrustPolicy;
  counters: Counters;
  /** This node's own certificate: always known. */
  self: NodeCertificate;
}

const UNTRUSTED_BECAUSE: Record<Exclude<TrustVerdict, 'trusted'>, string> = {
  'revoked': 'its key or its owner\'s is revoked',
  'unknown-owner': 'its owner is not in mesh.trust.owners',
  'pin-mismatch': 'its key is not the one mesh.neighbours pins for it',
};

export class MemberDirectory {
  private readonly members = new Map<string, NodeCertificate>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: MemberDirectoryOptions) {}

  async start(): Promise<void> {
    this.members.set(certificateNodeId(this.options.self), this.options.self);
    let stored: unknown[] = [];
    try {
      stored = JSON.parse(await readFile(this.options.file, 'utf8')) as unknown[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.counters.increment('mesh.members_file_unreadable');
    }
    for (const raw of Array.isArray(stored) ? stored : []) {
      try {
        this.accept(decodeCertificate(raw));
      } catch {
        this.options.counters.increment('mesh.members_file_unreadable');
      }
    }
  }

  /**
   * Verifies and remembers a certificate from the network (saved in the
   * background). Returns the node id; throws CERTIFICATE_INVALID (bad shape or
   * signature) or PEER_UNTRUSTED. Synchronous: the broker's CONNECT check uses it.
   */
  learn(raw: unknown): string {
    const cert = decodeCertificate(raw);
    const nodeId = certificateNodeId(cert);
    const verdict = trustOf(cert, this.options.policy);
    if (verdict !== 'trusted') {
      throw new ApiaryError(ErrorCodes.PEER_UNTRUSTED, `node ${nodeId} (${cert.name}) is not trusted: ${UNTRUSTED_BECAUSE[verdict]}`, {
        hint: verdict === 'unknown-owner' ? `to trust it, add its owner key ${cert.owner} to mesh.trust.owners` : undefined,
      });
    }
    if (this.accept(cert)) void this.save();
    return nodeId;
  }

  /** The trusted certificate of a node, if any. */
  get(nodeId: string): NodeCertificate | undefined {
    return this.members.get(nodeId);
  }

  verdict(nodeId: string, key: string): TrustVerdict | 'unknown-node' {
    const cert = this.members.get(nodeId);
    if (!cert) return this.options.policy.revoked.has(key) ? 'revoked' : 'unknown-node';
    if (cert.node !== key) return 'unknown-node';
    return trustOf(cert, this.options.policy);
  }

  all(): NodeCertificate[] {
    return [...this.members.values()];
  }

  async stop(): Promise<void> {
    await this.writing;
  }

  /** Keeps a trusted certificate, the newest one per node. True if anything changed. */
  private accept(cert: NodeCertificate): boolean {
    if (trustOf(cert, this.options.policy) !== 'trusted') return false;
    const nodeId = certificateNodeId(cert);
    const held = this.members.get(nodeId);
    if (held && held.issuedAt >= cert.issuedAt) return false;
    this.members.set(nodeId, cert);
    return true;
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.all(), null, 1)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.options.file, text)).catch(() => this.options.counters.increment('mesh.members_file_write_errors'));
    return this.writing;
  }
}
