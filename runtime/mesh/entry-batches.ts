/**
 * Entries messages that the receiver accepts, by construction. An `entries`
 * message must stay under two limits the peer enforces: the number of
 * certificates it carries (MAX_CERTS_PER_MESSAGE, the header schema) and its
 * size (the broker's packet limit, of which MAX_ENTRIES_MESSAGE_BYTES is the
 * share for the mesh message). A batch that breaks either is refused whole by
 * the peer; re-sent unchanged it would be refused forever (issue 10, finding
 * 7). So every batch, a catch-up answer or forwarded gossip, is cut here
 * counting the header, the `starts` map and the certificates it will carry.
 */
import type { NodeCertificate } from './certificate.js';
import { encodeEntry, type FeedEntry } from './feed-entry.js';
import { MAX_CERTS_PER_MESSAGE, MAX_ENTRIES_MESSAGE_BYTES } from './mesh-protocol.js';
import type { PeerView } from './peer-table.js';

export interface MessageBudget {
  /** Whole message: header (certificates included) plus entry lines. */
  readonly maxBytes: number;
  /** Distinct origins (so at most as many certificates). */
  readonly maxOrigins: number;
  /** Bytes the certificate of `origin` adds to this message (0 when it is not sent with it). */
  readonly certBytes: (origin: string) => number;
}

/** Room for the fixed header fields: {"t":"entries","hops":..,"reply":..,"certs":[],"starts":{},"answers":..}. */
const HEADER_BYTES = 256;
/** Per origin: its `starts` member ("<12-char id>":<seq>,) at the most. */
const PER_ORIGIN_BYTES = 40;

/** The peer's limits, for a message carrying the certificates `certOf` names. */
export function messageBudget(certOf: (origin: string) => NodeCertificate | undefined = () => undefined, maxBytes = MAX_ENTRIES_MESSAGE_BYTES): MessageBudget {
  const certBytes = (origin: string) => {
    const cert = certOf(origin);
    return cert ? JSON.stringify(cert).length : 0;
  };
  return { maxBytes: Math.min(maxBytes, MAX_ENTRIES_MESSAGE_BYTES), maxOrigins: MAX_CERTS_PER_MESSAGE, certBytes };
}

/** Fills one message: add() says whether an entry still fits (the first always does: one entry and its certificate are far below the limits). */
export class BatchBuilder {
  readonly entries: FeedEntry[] = [];
  /** Bytes of the entry lines alone (what catch-up counters report). */
  entryBytes = 0;
  private bytes = HEADER_BYTES;
  private readonly origins = new Set<string>();

  constructor(private readonly budget: MessageBudget) {}

  add(entry: FeedEntry, size = encodeEntry(entry).length): boolean {
    const newOrigin = !this.origins.has(entry.origin);
    if (newOrigin && this.origins.size >= this.budget.maxOrigins && this.entries.length > 0) return false;
    const cost = size + 1 + (newOrigin ? PER_ORIGIN_BYTES + this.budget.certBytes(entry.origin) + 1 : 0);
    if (this.entries.length > 0 && this.bytes + cost > this.budget.maxBytes) return false;
    this.entries.push(entry);
    this.origins.add(entry.origin);
    this.bytes += cost;
    this.entryBytes += size;
    return true;
  }
}

/** Cuts entries (in the order given) into messages that each fit the budget. */
export function splitIntoMessages(entries: readonly FeedEntry[], budget: MessageBudget): FeedEntry[][] {
  const out: FeedEntry[][] = [];
  let builder = new BatchBuilder(budget);
  for (const entry of entries) {
    if (builder.add(entry)) continue;
    out.push(builder.entries);
    builder = new BatchBuilder(budget);
    builder.add(entry);
  }
  if (builder.entries.length > 0) out.push(builder.entries);
  return out;
}

/**
 * The certificate of `origin` to put in a message to a peer, if any: not when
 * the peer showed it holds that origin, nor within `resendMs` of the last
 * send (a message may have been refused or lost, so a send alone does not
 * count as delivered).
 */
export function certificateToSend(view: Pick<PeerView, 'certsSent' | 'certsHeld'>, origin: string, cert: NodeCertificate | undefined, now: number, resendMs: number): NodeCertificate | undefined {
  if (!cert) return undefined;
  if (view.certsHeld.has(origin)) return undefined;
  const sentAt = view.certsSent.get(origin);
  return sentAt !== undefined && now - sentAt < resendMs ? undefined : cert;
}
