/**
 * `apiary feed list | export`: the signed feeds a node holds, read straight
 * from its data dir (read-only: nothing is recovered or rewritten, so it works
 * beside a running node), for operators and auditors who want to check that
 * every node holds every entry without trusting the node's own report.
 *
 * `export` writes each entry exactly as stored: one JSON object per line, in
 * the wire format of runtime/mesh/feed-entry.ts, signature included; the
 * docs/formats.md ("Feed entries: format and signatures") says how to verify one with
 * nothing but an Ed25519 and a SHA-256 implementation.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { entryHash, parseEntry, verifyEntry, type FeedEntry } from '../mesh/feed-entry.js';
import { readSegmentDir } from '../storage/segment-reader.js';

const ORIGIN_DIR = /^[a-z2-7]{12}$/;

export interface FeedSummary {
  readonly origin: string;
  /** First and last seq held (retention drops the oldest). */
  readonly fromSeq: number | null;
  readonly toSeq: number | null;
  readonly entries: number;
  readonly bytes: number;
  /** Seqs missing between held entries (none in a healthy store). */
  readonly gaps: number;
  /** Entries whose prev is not the hash of the entry before: two histories of one origin. */
  readonly forks: number;
  /** Entries that do not parse, are not at their place, or whose signature does not verify. */
  readonly invalid: number;
  /** A segment that stops before its end: a torn tail (after a crash) or one being written now. */
  readonly cutTails: number;
}

function feedsDir(config: ApiaryConfig): string {
  return path.join(config.node.dataDir, 'mesh', 'feeds');
}

async function origins(config: ApiaryConfig, only?: string): Promise<string[]> {
  if (only !== undefined && !ORIGIN_DIR.test(only)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--origin ${only} is not a node id`, { hint: 'a node id is 12 characters a-z and 2-7; `apiary feed list` shows the ones held' });
  }
  const names = (await readdir(feedsDir(config)).catch(() => [])).filter((n) => ORIGIN_DIR.test(n)).sort();
  return only === undefined ? names : names.filter((n) => n === only);
}

/** Reads one origin's feed, checking every entry (shape, place, signature, chain). */
export async function summariseFeed(config: ApiaryConfig, origin: string): Promise<FeedSummary> {
  let fromSeq: number | null = null;
  let toSeq: number | null = null;
  let entries = 0;
  let bytes = 0;
  let gaps = 0;
  let forks = 0;
  let invalid = 0;
  let previous: FeedEntry | undefined;
  const records = readSegmentDir(path.join(feedsDir(config), origin));
  let step = await records.next();
  for (; !step.done; step = await records.next()) {
    const record = step.value;
    bytes += record.bytes;
    let entry: FeedEntry;
    try {
      entry = verifyEntry(parseEntry(record.payload));
      // A feed's log position is seq - 1 (feed-store.ts).
      if (entry.origin !== origin || entry.seq !== record.seq + 1) throw new Error('out of place');
    } catch {
      invalid += 1;
      continue;
    }
    entries += 1;
    fromSeq ??= entry.seq;
    toSeq = entry.seq;
    if (previous) {
      if (entry.seq > previous.seq + 1) gaps += entry.seq - previous.seq - 1;
      else if (entry.prev !== entryHash(previous)) forks += 1;
    }
    previous = entry;
  }
  return { origin, fromSeq, toSeq, entries, bytes, gaps, forks, invalid, cutTails: step.value.cut.length };
}

export async function feedListCommand(config: ApiaryConfig, options: { json?: boolean }): Promise<void> {
  const feeds: FeedSummary[] = [];
  for (const origin of await origins(config)) feeds.push(await summariseFeed(config, origin));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(feeds, null, 2)}\n`);
    return;
  }
  if (feeds.length === 0) {
    process.stdout.write(`no feeds in ${feedsDir(config)}\n`);
    return;
  }
  const header = ['ORIGIN', 'FROM', 'TO', 'ENTRIES', 'BYTES', 'GAPS', 'FORKS', 'INVALID', 'CUT'];
  const rows = feeds.map((f) => [f.origin, String(f.fromSeq ?? '-'), String(f.toSeq ?? '-'), String(f.entries), String(f.bytes), String(f.gaps), String(f.forks), String(f.invalid), String(f.cutTails)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
  if (feeds.some((f) => f.gaps + f.forks + f.invalid > 0)) process.exitCode = 1;
}

/** Each stored entry of the chosen feeds as one line of JSON, exactly the bytes the node holds. */
export async function feedExportCommand(config: ApiaryConfig, options: { origin?: string; fromSeq?: number }): Promise<void> {
  const fromSeq = options.fromSeq ?? 1;
  for (const origin of await origins(config, options.origin)) {
    const records = readSegmentDir(path.join(feedsDir(config), origin), Math.max(0, fromSeq - 1));
    for (let step = await records.next(); !step.done; step = await records.next()) {
      const line = `${step.value.payload.toString('utf8')}\n`;
      // Respect a slow reader (a pipe to a verifier): wait for the drain instead of buffering the whole feed.
      if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  }
}
