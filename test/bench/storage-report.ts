/** The rows of `npm run bench -- --only storage`. */
import { summarize } from './stats.js';
import type { StorageResults } from './storage.js';
import type { Row } from './table.js';

export function storageRows(s: StorageResults): Row[] {
  const { records, window, rounds, boxes } = s.plan;
  const section = `storage: readings written once into the own feed, in plain and sealed (mesh.private), ${records} each; ${rounds} rounds, who goes first swapped`;
  const median = (values: readonly number[]) => summarize(values)?.median ?? Number.NaN;
  return [
    { section, metric: 'open and index the feed after a clean stop (from its checkpoint), sealed', unit: 'ms', summary: summarize(s.sealed.openMs), reference: { label: 'ms in plain', value: median(s.plain.openMs) } },
    { section, metric: 'open and index the feed after a crash (no checkpoint: the whole feed read), sealed', unit: 'ms', summary: summarize(s.sealed.rebuildMs), reference: { label: 'ms in plain', value: median(s.plain.rebuildMs) } },
    { section, metric: 'open and index the feed: from the checkpoint against without, plain', unit: 'ms', summary: summarize(s.plain.openMs), reference: { label: 'ms without, plain', value: median(s.plain.rebuildMs) } },
    { section, metric: `read the newest ${window} records (the thermal window at start), sealed`, unit: 'ms', summary: summarize(s.sealed.windowMs), reference: { label: 'ms in plain', value: median(s.plain.windowMs) } },
    { section, metric: 'bytes in the feed per record, sealed', unit: 'B', summary: summarize([s.bytesPerRecord.sealed]), reference: { label: 'B in plain', value: s.bytesPerRecord.plain } },
    { section: `storage: open one box of the node's own, ${boxes} per round`, metric: 'by its own derived key (what the sealed stream does)', unit: 'µs', summary: summarize(s.ownBoxUs), reference: { label: 'µs by X25519 (a recipient, or an older release\'s box)', value: median(s.x25519BoxUs) } },
  ];
}
