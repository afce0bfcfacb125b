/**
 * What recovery after a crash cut off, per stream, for the warning at start:
 * "stream logs were recovered" alone does not tell an operator whether a
 * kill -9 cost one torn record or an hour of readings.
 */
import type { StreamStats } from '../storage/stream-store.js';

export interface StreamCut {
  readonly stream: string;
  readonly records: number;
  readonly bytes: number;
}

export function describeRecovery(stats: readonly StreamStats[]): { streams: StreamCut[]; text: string } {
  const streams = stats
    .filter((s) => s.droppedCorrupt > 0 || s.droppedCorruptBytes > 0)
    .map((s) => ({ stream: s.name, records: s.droppedCorrupt, bytes: s.droppedCorruptBytes }));
  if (streams.length === 0) return { streams, text: 'stream logs checked, nothing was cut (every record written before the stop is kept)' };
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = streams.map((c) => `${c.stream}: ${plural(c.records, 'torn record')} (${plural(c.bytes, 'byte')})`);
  return { streams, text: `recovery cut ${parts.join(', ')}; every record before those is kept` };
}
