/**
 * Reads a segment-log directory without opening it as a log: nothing is
 * recovered, truncated or created, so an auditor (or `apiary feed`) may read
 * the files of a running node. It yields the CRC-valid frames of each segment
 * and stops a segment at its first incomplete or damaged frame (a running
 * node's half-written tail looks the same), reporting where.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { FRAME_HEADER_BYTES } from './record-frame.js';
import { readFrames, SEGMENT_NAME } from './segment-log.js';
import type { StoredRecord } from './stream-store.js';

export interface SegmentReadSummary {
  /** Segments whose frames stopped before the end of the file (a torn tail, or one being written). */
  readonly cut: { readonly file: string; readonly at: number; readonly why: 'incomplete' | 'corrupt' }[];
}

/** Records with seq >= fromSeq across the directory's segments, oldest first; the summary is the generator's return value. */
export async function* readSegmentDir(dir: string, fromSeq = 0): AsyncGenerator<StoredRecord & { readonly bytes: number }, SegmentReadSummary, undefined> {
  const cut: SegmentReadSummary['cut'][number][] = [];
  const names = (await readdir(dir).catch(() => [])).filter((n) => SEGMENT_NAME.test(n)).sort();
  for (const [i, name] of names.entries()) {
    const firstSeq = Number(name.slice(0, 20));
    const next = names[i + 1];
    if (next !== undefined && Number(next.slice(0, 20)) <= fromSeq) continue;
    const file = path.join(dir, name);
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const frames = readFrames(fh, 0, size);
      let seq = firstSeq;
      let step = await frames.next();
      for (; !step.done; step = await frames.next()) {
        if (seq >= fromSeq) yield { seq, payload: step.value, bytes: step.value.length + FRAME_HEADER_BYTES };
        seq += 1;
      }
      if (step.value.stop !== 'end') cut.push({ file, at: step.value.end, why: step.value.stop });
    } finally {
      await fh.close();
    }
  }
  return { cut };
}
