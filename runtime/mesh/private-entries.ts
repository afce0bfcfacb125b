/**
 * Private entries: a feed entry whose body is a sealed box of {type, body}
 * (private-box.ts) for a list of recipients. Every node verifies, stores and
 * relays it like any entry; only the recipients (and the origin) can open it.
 *
 * The box is bound to its entry (v2: origin and seq in its AAD), so a node
 * that copies a sealed body into its own feed does not get it read as its
 * own words (issue 10, finding 13). Boxes sealed before that (v1) still
 * open, but only in the feed of one of their recipients: the sender always
 * seals for itself, so an honest v1 entry passes; a node that could not read
 * the box cannot re-publish it; one that could (a co-recipient) gains
 * nothing it could not do by sealing the plaintext itself.
 */
import type { Counters } from '../counters.js';
import type { FeedEntry } from './feed-entry.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import { openOwnBox, openSealedBox, sealForRecipients, type SealedBox } from './private-box.js';

/** Entry type of a private entry. */
export const PRIVATE_ENTRY_TYPE = 'private';
const PRIVATE_CONTEXT = 'apiary-feed-entry';

export interface OpenedPrivateEntry {
  origin: string;
  seq: number;
  type: string;
  body: unknown;
}

/**
 * Seals {type, body} for the recipients whose certificates this node knows.
 * A recipient not known yet cannot be sealed for: it is counted, and left out.
 */
/** What a v2 box of a private entry is bound to: its place in the origin's feed. */
function entryBinding(origin: string, seq: number): string {
  return JSON.stringify([origin, seq]);
}

export function sealPrivateBody(type: string, body: unknown, recipients: readonly string[], identity: MeshIdentity, directory: MemberDirectory, counters: Counters, seq: number): SealedBox {
  const known = recipients.flatMap((nodeId) => {
    const cert = directory.get(nodeId);
    if (!cert) counters.increment('mesh.private_recipient_unknown');
    return cert ? [{ nodeId, box: cert.box }] : [];
  });
  const origin = identity.node.nodeId;
  return sealForRecipients(Buffer.from(JSON.stringify({ type, body })), { ...identity.box, nodeId: origin }, known, PRIVATE_CONTEXT, entryBinding(origin, seq));
}

/** Opens a private entry addressed to this node; undefined (counted) when it is for others or malformed. */
export function openPrivateEntry(entry: FeedEntry, identity: MeshIdentity, counters: Counters): OpenedPrivateEntry | undefined {
  const nodeId = identity.node.nodeId;
  let sealed: { v?: unknown; recipients?: Record<string, unknown> };
  try {
    sealed = JSON.parse(entry.body) as typeof sealed;
  } catch {
    counters.increment('mesh.private_malformed');
    return undefined;
  }
  if (sealed === null || typeof sealed !== 'object' || !sealed.recipients || typeof sealed.recipients !== 'object' || !Object.hasOwn(sealed.recipients, nodeId)) {
    counters.increment('mesh.private_relayed'); // stored and passed on, unread
    return undefined;
  }
  if (!Object.hasOwn(sealed.recipients, entry.origin)) {
    counters.increment('mesh.rejected.private_unbound'); // the origin did not seal it: a copied body
    return undefined;
  }
  try {
    const me = { nodeId, box: identity.box };
    const binding = entryBinding(entry.origin, entry.seq);
    // This node's own entry (sealed by this release) opens without X25519; a peer's box never tries the own key.
    const plaintext = (entry.origin === nodeId ? openOwnBox(sealed, me, PRIVATE_CONTEXT, binding) : undefined) ?? openSealedBox(sealed, me, PRIVATE_CONTEXT, binding);
    const { type, body } = JSON.parse(plaintext.toString('utf8')) as { type: string; body: unknown };
    counters.increment(sealed.v === 1 ? 'mesh.private_legacy_opened' : 'mesh.private_opened');
    return { origin: entry.origin, seq: entry.seq, type, body };
  } catch {
    counters.increment('mesh.private_malformed');
    return undefined;
  }
}

/**
 * A private entry of this node's own feed, opened with the content key this
 * release derives when it seals (one HKDF, no X25519: private-box.ts). A
 * body sealed by an older release (a random key), by another node, or
 * malformed gives undefined: the stream index (core/feed-index.ts) takes
 * only what this release sealed as the one copy of a record.
 */
export function openOwnPrivateEntry(entry: FeedEntry, identity: MeshIdentity): { type: string; body: unknown } | undefined {
  if (entry.type !== PRIVATE_ENTRY_TYPE || entry.origin !== identity.node.nodeId) return undefined;
  try {
    const plaintext = openOwnBox(JSON.parse(entry.body), { nodeId: entry.origin, box: identity.box }, PRIVATE_CONTEXT, entryBinding(entry.origin, entry.seq));
    if (!plaintext) return undefined;
    const opened = JSON.parse(plaintext.toString('utf8')) as { type?: unknown; body?: unknown };
    return typeof opened.type === 'string' ? { type: opened.type, body: opened.body } : undefined;
  } catch {
    return undefined;
  }
}
