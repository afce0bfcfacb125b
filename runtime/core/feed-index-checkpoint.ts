/**
 * The stream index over the own feed (feed-index.ts), saved at a clean stop
 * so the next start reads only the entries after it instead of the whole
 * retained feed (16 MiB, some 25,000 records: about 0.3 s on x86, seconds
 * on a Pi Zero 2 W, that the first stored record waited for; for sealed
 * streams each entry is also a box to open).
 *
 * `streams/feed-index-checkpoint.json`, written atomically at stop:
 *   {"version":1,"origin":"<node id>","head":{"seq":N,"hash":"<entry id>"},
 *    "files":{"plain":{...},"sealed":{...}},
 *    "streams":{"readings":[{"sealed":false,"base":0,"fromFeedSeq":1,"dropped":0,
 *                            "seqDeltas":[1,2,1,...],"sizes":[700,...]}]}}
 * `head` is the newest own entry the index had seen: the next start checks
 * that the feed still holds it (same seq, same entry id), so a feed cut
 * below it (a power cut after the stop, a restored backup) is never trusted.
 * `files` are the parts files as last written with it: if either differs at
 * start (a release that knows no checkpoint ran meanwhile, or retention
 * rebased a part), the checkpoint is ignored. Either way the index is then
 * rebuilt from the feed as before; the checkpoint is a shortcut, never the
 * truth. Entries after `head` are read at start as always.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';

const streamsSchema = z.record(z.string().max(80), z.array(z.strictObject({ base: z.number().int().min(0), fromFeedSeq: z.number().int().min(1) })).max(1000));
export type PartsStreams = z.infer<typeof streamsSchema>;

/** Records kept per checkpoint, at most: far above what 16 MiB (or any sane retention) of own feed holds. */
const MAX_RECORDS = 2_000_000;

const partSchema = z.strictObject({
  sealed: z.boolean(),
  base: z.number().int().min(0),
  fromFeedSeq: z.number().int().min(1),
  dropped: z.number().int().min(0),
  seqDeltas: z.array(z.number().int().min(0)).max(MAX_RECORDS),
  sizes: z.array(z.number().int().min(1).max(1 << 20)).max(MAX_RECORDS),
});

const checkpointSchema = z.strictObject({
  version: z.literal(1),
  origin: z.string().regex(/^[a-z2-7]{12}$/),
  head: z.strictObject({ seq: z.number().int().min(1), hash: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }),
  files: z.strictObject({ plain: streamsSchema, sealed: streamsSchema }),
  streams: z.record(z.string().max(80), z.array(partSchema).max(2000)),
});
export type CheckpointFile = z.infer<typeof checkpointSchema>;

/** A part of the index as kept in memory (feed-index.ts). */
export interface CheckpointPart {
  readonly sealed: boolean;
  readonly base: number;
  readonly fromFeedSeq: number;
  readonly dropped: number;
  readonly feedSeqs: readonly number[];
  readonly sizes: readonly number[];
}

export function encodeCheckpoint(origin: string, head: { seq: number; hash: string }, files: CheckpointFile['files'], parts: ReadonlyMap<string, readonly CheckpointPart[]>): CheckpointFile {
  const streams: CheckpointFile['streams'] = {};
  for (const [name, list] of parts) {
    streams[name] = list.map((p) => ({
      sealed: p.sealed, base: p.base, fromFeedSeq: p.fromFeedSeq, dropped: p.dropped,
      // Feed seqs grow: deltas keep the file about a third of the size.
      seqDeltas: p.feedSeqs.map((seq, i) => seq - (i === 0 ? p.fromFeedSeq : (p.feedSeqs[i - 1] as number))),
      sizes: [...p.sizes],
    }));
  }
  return { version: 1, origin, head, files, streams };
}

/**
 * The checkpoint's parts, if it fits this feed and these parts files;
 * undefined (and why) when it must not be used.
 */
export function decodeCheckpoint(raw: unknown, expect: { origin: string; files: CheckpointFile['files'] }): { head: CheckpointFile['head']; parts: Map<string, CheckpointPart[]> } | { refused: 'invalid' | 'stale' } {
  const parsed = checkpointSchema.safeParse(raw);
  if (!parsed.success) return { refused: 'invalid' };
  const file = parsed.data;
  if (file.origin !== expect.origin || !isDeepStrictEqual(file.files, expect.files)) return { refused: 'stale' };
  const parts = new Map<string, CheckpointPart[]>();
  let records = 0;
  for (const [name, list] of Object.entries(file.streams)) {
    const out: CheckpointPart[] = [];
    for (const p of list) {
      if (p.seqDeltas.length !== p.sizes.length) return { refused: 'invalid' };
      records += p.sizes.length;
      if (records > MAX_RECORDS) return { refused: 'invalid' };
      const feedSeqs: number[] = [];
      let seq = p.fromFeedSeq;
      for (const [i, delta] of p.seqDeltas.entries()) {
        // The first record may be the part's first entry (delta 0); after it, each is a later entry.
        if (i > 0 && delta < 1) return { refused: 'invalid' };
        seq += delta;
        if (seq > file.head.seq) return { refused: 'invalid' };
        feedSeqs.push(seq);
      }
      out.push({ sealed: p.sealed, base: p.base, fromFeedSeq: p.fromFeedSeq, dropped: p.dropped, feedSeqs, sizes: p.sizes });
    }
    parts.set(name, out);
  }
  return { head: file.head, parts };
}
