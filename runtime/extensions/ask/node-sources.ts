/**
 * What `readings/recent` and `mesh/decisions` read: the tail of the node's
 * readings stream, and each other origin's latest decisions (kept as their
 * entries arrive). Bounded reads, and nothing is written.
 */
import type { NodeContext } from '../../core/node-context.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import { nodeIdFromPublicKey } from '../../identity/identity.js';
import { PRIVATE_ENTRY_TYPE } from '../../mesh/private-entries.js';
import type { NeighbourDecision, RecentReadings } from './evidence.js';

/** Records read back from the readings stream, per reading wanted: every channel shares the stream. */
const RECORDS_PER_READING = 16;
const MAX_RECORDS = 20_000;
/** Records a range read looks at beyond its ends: readings are appended as recorded, which is not strictly in time order. */
const ORDER_SLACK = 64;
/** Entries read back from the head of each other feed at start (as many as an audit reads). */
const FEED_SCAN = 20_000;

export async function recentReadings(ctx: NodeContext, channel: string, limit: number): Promise<RecentReadings> {
  const stream = await ctx.storage.stream('readings');
  const { firstSeq, nextSeq } = stream.stats();
  const from = Math.max(firstSeq, nextSeq - Math.min(MAX_RECORDS, limit * Math.max(RECORDS_PER_READING, ctx.channels().length * 4)));
  const readings: { value: number; t: number }[] = [];
  let unit = ctx.channels().find((c) => c.name === channel)?.unit ?? '';
  for await (const record of stream.read(from)) {
    try {
      const r = JSON.parse(record.payload.toString('utf8')) as { channel?: unknown; value?: unknown; unit?: unknown; t?: unknown };
      if (r.channel !== channel || typeof r.value !== 'number' || typeof r.t !== 'number') continue;
      readings.push({ value: r.value, t: r.t });
      if (typeof r.unit === 'string') unit = r.unit;
    } catch {
      ctx.counters.increment('storage.unreadable_records');
    }
  }
  return { channel, unit, readings: readings.sort((a, b) => a.t - b.t).slice(-limit) };
}

/** A channel's readings within [from, to]; `truncated` when the scan stopped at its bound or at `limit`. */
export interface RangeReadings extends RecentReadings { readonly truncated: boolean }

/** The node time of the record at `seq`, if it is a reading. */
async function timeAt(stream: Awaited<ReturnType<NodeContext['storage']['stream']>>, seq: number): Promise<number | undefined> {
  for await (const record of stream.read(seq, 1)) {
    try {
      const t = (JSON.parse(record.payload.toString('utf8')) as { t?: unknown }).t;
      return typeof t === 'number' ? t : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Readings of one channel with from <= t <= to, oldest first. Records are
 * stored in the order they were taken, so a binary search (one indexed read
 * per step) finds the first at or after `from`, and a forward scan of at most
 * MAX_RECORDS records collects them: a range of last year costs as little as
 * one of today. A clock set back while recording (a board without a real-time
 * clock booting before NTP) makes a range around that moment approximate.
 */
export async function rangeReadings(ctx: NodeContext, channel: string, from: number, to: number, limit: number): Promise<RangeReadings> {
  const stream = await ctx.storage.stream('readings');
  const { firstSeq, nextSeq } = stream.stats();
  let lo = firstSeq;
  let hi = nextSeq;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const t = await timeAt(stream, mid);
    if (t !== undefined && t < from) lo = mid + 1;
    else hi = mid;
  }
  const readings: { value: number; t: number }[] = [];
  let unit = ctx.channels().find((c) => c.name === channel)?.unit ?? '';
  let scanned = 0;
  let truncated = false;
  let pastEnd = 0;
  // Readings of several channels are appended as they are recorded, a little out of time order: a margin of
  // records is read on both sides of the range, and only the readings inside it are kept.
  for await (const record of stream.read(Math.max(firstSeq, lo - ORDER_SLACK))) {
    if (++scanned > MAX_RECORDS || readings.length >= limit) {
      truncated = true;
      break;
    }
    try {
      const r = JSON.parse(record.payload.toString('utf8')) as { channel?: unknown; value?: unknown; unit?: unknown; t?: unknown };
      if (typeof r.t === 'number' && r.t > to) {
        if (++pastEnd >= ORDER_SLACK) break;
        continue;
      }
      if (r.channel !== channel || typeof r.value !== 'number' || typeof r.t !== 'number' || r.t < from) continue;
      readings.push({ value: r.value, t: r.t });
      if (typeof r.unit === 'string') unit = r.unit;
    } catch {
      ctx.counters.increment('storage.unreadable_records');
    }
  }
  return { channel, unit, readings: readings.sort((a, b) => a.t - b.t), truncated };
}

interface DecisionBody { rule?: unknown; active?: unknown; severity?: unknown; message?: unknown; reason?: unknown; t?: unknown }

/**
 * Each other node's latest decision per rule: seeded from the tail of each
 * feed at start, then kept from every entry that arrives, so a decision
 * older than any scan window is still known.
 */
export class NeighbourDecisions {
  private readonly latest = new Map<string, NeighbourDecision>();

  constructor(private readonly ctx: NodeContext) {}

  /** Reads back the tail of every other feed (in the background: `ctx.track`). */
  async seed(): Promise<void> {
    const mesh = this.ctx.mesh;
    if (!mesh) return;
    for (const [origin, head] of Object.entries(mesh.store.have())) {
      if (origin === this.ctx.identity.nodeId) continue;
      const entries: AsyncIterable<FeedEntry> = mesh.store.read(origin, Math.max(1, head - FEED_SCAN + 1));
      for await (const entry of entries) this.onEntry(entry);
    }
  }

  /** An entry of another origin: kept if it is a decision this node may read, newer than the one held. */
  onEntry(entry: FeedEntry): void {
    const mesh = this.ctx.mesh;
    if (!mesh || entry.origin === this.ctx.identity.nodeId || (entry.type !== 'decision' && entry.type !== PRIVATE_ENTRY_TYPE)) return;
    const read = mesh.readEntry(entry);
    if (read?.type !== 'decision' || read.body === null || typeof read.body !== 'object') return;
    const d = read.body as DecisionBody;
    // Another node's data: only well-formed fields are taken, and bounded.
    if (typeof d.rule !== 'string' || typeof d.active !== 'boolean' || typeof d.t !== 'number') return;
    const key = `${entry.origin}/${d.rule}`;
    if ((this.latest.get(key)?.t ?? Number.NEGATIVE_INFINITY) > d.t) return;
    this.latest.set(key, {
      origin: entry.origin, rule: d.rule.slice(0, 64), active: d.active, t: d.t,
      severity: typeof d.severity === 'string' ? d.severity.slice(0, 16) : 'warning',
      message: typeof d.message === 'string' ? d.message.slice(0, 200) : d.rule.slice(0, 64),
      reason: typeof d.reason === 'string' ? d.reason.slice(0, 300) : '',
    });
  }

  /** Newest first, with the name in each origin's certificate. */
  list(limit: number): NeighbourDecision[] {
    const names = memberNames(this.ctx);
    return [...this.latest.values()].sort((a, b) => b.t - a.t).slice(0, limit).map((d) => ({ ...d, name: names.get(d.origin) }));
  }
}

/** Node id -> the name in its certificate, for every other node this one knows. */
export function memberNames(ctx: NodeContext): Map<string, string> {
  const names = new Map<string, string>();
  for (const cert of ctx.mesh?.members() ?? []) {
    const nodeId = nodeIdFromPublicKey(Buffer.from(cert.node, 'base64url'));
    if (nodeId !== ctx.identity.nodeId) names.set(nodeId, cert.name);
  }
  return names;
}
