/**
 * Sparse replication (issue 16): what a node keeps of other nodes' feeds.
 * `mesh.replicate` is a list of keep rules; an entry is kept (written to
 * disk) if it is this node's own, a revocation, or any rule matches it. A
 * rule matches by origin, owner, type (a trailing `*` matches a prefix) and
 * age (the entry's hybrid-logical-clock time); a private entry sealed for
 * this node is kept as its own are. Without `mesh.replicate`
 * every entry is kept, as before.
 *
 * An entry that is not kept is still verified and chained (the feed's head
 * moves on), and is held for a while in memory (relay-cache.ts) so it still
 * goes along the broadcast tree and answers peers' wants. An origin that no
 * rule keeps whole (every type, any age) is held *sparsely* (feed-store.ts):
 * its kept entries in a log of their own, its head in a state file.
 */
import { z } from 'zod';
import { duration } from '../config/units.js';
import type { FeedEntry } from './feed-entry.js';
import { MAX_SPARSE_ORIGINS } from './mesh-protocol.js';
import { PRIVATE_ENTRY_TYPE } from './private-entries.js';
import { REVOCATION_ENTRY_TYPE } from './revocation.js';

export interface KeepRule {
  readonly origins?: readonly string[];
  readonly owners?: readonly string[];
  /** Entry types; `alert*` matches every type starting with `alert`. */
  readonly types?: readonly string[];
  /** Kept while the entry's hlc time is at most this old (ms). */
  readonly maxAge?: number;
}

/** Entries every node keeps, whatever the rules: a revocation must reach and stay on every node. */
const ALWAYS_KEPT = new Set([REVOCATION_ENTRY_TYPE]);

const TYPE_PATTERN = /^[a-z][a-z0-9.-]{0,63}\*?$/;

/** `mesh.replicate`: the config schema of the keep rules (validated, then frozen with the config). */
export const replicateSchema = z.array(z.strictObject({
  origins: z.array(z.string().regex(/^[a-z2-7]{12}$/, { error: 'expected a 12-character node id (see `apiary id` on that node)' })).min(1).max(256).optional(),
  owners: z.array(z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'expected a base64url owner key of 43 characters (`apiary owner show` on that owner\'s side)' })).min(1).max(256).optional(),
  types: z.array(z.string().regex(TYPE_PATTERN, {
    error: 'expected an entry type like "alert" or a prefix like "alert*" (lower-case letters, digits, dots and dashes; `*` only at the end)',
  })).min(1).max(64).optional(),
  maxAge: duration(1_000, 3650 * 86_400_000).optional(),
}).refine((rule) => Object.keys(rule).length > 0, {
  error: 'a rule with no field keeps everything: give origins, owners, types or maxAge, or leave mesh.replicate out to keep every entry',
})).max(64);

/** The keep rules in force: absent rules keep everything. */
export class KeepRules {
  constructor(
    private readonly rules: readonly KeepRule[] | undefined,
    private readonly self: string,
    private readonly ownerOf: (origin: string) => string | undefined,
  ) {}

  /** True when the node keeps only part of what it receives. */
  get sparse(): boolean {
    return this.rules !== undefined;
  }

  /** Whether `entry` is written to disk here (at `now`: an entry past every matching rule's maxAge is not). */
  keeps(entry: FeedEntry, now: number): boolean {
    if (!this.rules || entry.origin === this.self || ALWAYS_KEPT.has(entry.type) || this.sealedForSelf(entry)) return true;
    const owner = this.ownerOf(entry.origin);
    return this.rules.some((rule) => this.covers(rule, entry.origin, owner)
      && (rule.types === undefined || rule.types.some((pattern) => typeMatches(pattern, entry.type)))
      && (rule.maxAge === undefined || entry.hlc.l >= now - rule.maxAge));
  }

  /** Whether every entry of `origin`, of any type and age, is kept: then its feed is held whole, as without rules. */
  holdsWhole(origin: string): boolean {
    if (!this.rules || origin === this.self) return true;
    const owner = this.ownerOf(origin);
    return this.rules.some((rule) => rule.types === undefined && rule.maxAge === undefined && this.covers(rule, origin, owner));
  }

  /** The rules as status shows them. */
  describe(): readonly KeepRule[] | 'everything' {
    return this.rules ?? 'everything';
  }

  /** A private entry sealed for this node (vouchers, questions): its own data, kept like its own entries. */
  private sealedForSelf(entry: FeedEntry): boolean {
    if (entry.type !== PRIVATE_ENTRY_TYPE) return false;
    try {
      const recipients = (JSON.parse(entry.body) as { recipients?: unknown }).recipients;
      return typeof recipients === 'object' && recipients !== null && Object.hasOwn(recipients, this.self);
    } catch {
      return false;
    }
  }

  private covers(rule: KeepRule, origin: string, owner: string | undefined): boolean {
    return (rule.origins === undefined || rule.origins.includes(origin))
      && (rule.owners === undefined || (owner !== undefined && rule.owners.includes(owner)));
  }
}

export function typeMatches(pattern: string, type: string): boolean {
  return pattern.endsWith('*') ? type.startsWith(pattern.slice(0, -1)) : type === pattern;
}

/**
 * Which origins each peer said (its `sparse` message) it holds sparsely: a
 * want for those goes to a peer that holds them whole when one is linked.
 * Bounded: at most MAX_SPARSE_ORIGINS per linked peer (the wire schema's bound).
 */
export class PeerSparseOrigins {
  private readonly byPeer = new Map<string, ReadonlySet<string>>();

  /** What the peer said replaces what it said before (a hello resets it: nothing sparse until it says). */
  note(peer: string, origins: readonly string[]): void {
    if (origins.length === 0) this.byPeer.delete(peer);
    else this.byPeer.set(peer, new Set(origins.slice(0, MAX_SPARSE_ORIGINS)));
  }

  has(peer: string, origin: string): boolean {
    return this.byPeer.get(peer)?.has(origin) ?? false;
  }
}
