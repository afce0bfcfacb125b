/**
 * Private entries: a feed entry whose body is a sealed box of {type, body}
 * (private-box.ts) for a list of recipients. Every node verifies, stores and
 * relays it like any entry; only the recipients (and the origin) can open it.
 */
import type { Counters } from '../counters.js';
import type { FeedEntry } from './feed-entry.js';
import type { MemberDirectory } from './member-directory.js';
import type { MeshIdentity } from './mesh-identity.js';
import { openSealedBox, sealForRecipients, type SealedBox } from './private-box.js';

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
export function sealPrivateBody(type: string, body: unknown, recipients: readonly string[], identity: MeshIdentity, directory: MemberDirectory, counters: Counters): SealedBox {
  const known = recipients.flatMap((nodeId) => {
    const cert = directory.get(nodeId);
    if (!cert) counters.increment('mesh.private_recipient_unknown');
    return cert ? [{ nodeId, box: cert.box }] : [];
  });
  return sealForRecipients(Buffer.from(JSON.stringify({ type, body })), { ...identity.box, nodeId: identity.node.nodeId }, known, PRIVATE_CONTEXT);
}

/** Opens a private entry addressed to this node; undefined (counted) when it is for others or malformed. */
export function openPrivateEntry(entry: FeedEntry, identity: MeshIdentity, counters: Counters): OpenedPrivateEntry | undefined {
  const nodeId = identity.node.nodeId;
  let sealed: { recipients?: Record<string, unknown> };
  try {
    sealed = JSON.parse(entry.body) as typeof sealed;
  } catch {
    counters.increment('mesh.private_malformed');
    return undefined;
  }
  if (!sealed.recipients || !Object.hasOwn(sealed.recipients, nodeId)) {
    counters.increment('mesh.private_relayed'); // stored and passed on, unread
    return undefined;
  }
  try {
    const { type, body } = JSON.parse(openSealedBox(sealed, { nodeId, box: identity.box }, PRIVATE_CONTEXT).toString('utf8')) as { type: string; body: unknown };
    counters.increment('mesh.private_opened');
    return { origin: entry.origin, seq: entry.seq, type, body };
  } catch {
    counters.increment('mesh.private_malformed');
    return undefined;
  }
}
