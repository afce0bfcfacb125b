/** The rows of `npm run bench -- --only payments`. */
import type { PaymentsResults } from './payments.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

export function paymentsRows(p: PaymentsResults): Row[] {
  const section = 'payments: node a pays node b one voucher at a time (pay/send, task id memo), 2 nodes of 2 owners on loopback through counting TCP proxies';
  const plain = summarize(p.plainEntryBytes)?.median ?? Number.NaN;
  const json = summarize(p.voucherJsonBytes)?.median ?? Number.NaN;
  const byEntry = { label: 'B plain signed entry, empty body', value: plain };
  const rebuild = `payments start-up: b rebuilds its channel book from ${p.rebuild.vouchers} vouchers of a held in its feeds`;
  return [
    { section, metric: "feed bytes per voucher, the payer's store on disk", unit: 'B', summary: summarize(p.payerFeedBytes), reference: byEntry },
    { section, metric: "feed bytes per voucher, the payee's copy on disk", unit: 'B', summary: summarize(p.payeeFeedBytes), reference: byEntry },
    { section, metric: 'bytes on the wire per voucher (both links, both ways, gossip in the window included)', unit: 'B', summary: summarize(p.wireBytes), reference: { label: 'B voucher canonical JSON', value: json } },
    { section, metric: 'voucher canonical JSON (signature and memo included)', unit: 'B', summary: summarize(p.voucherJsonBytes) },
    { section, metric: "private entry, empty body, sealed to b (payer's store)", unit: 'B', summary: summarize(p.privateEntryBytes), reference: byEntry },
    { section, metric: "plain signed entry, empty body (payer's store)", unit: 'B', summary: summarize(p.plainEntryBytes) },
    { section, metric: 'pay/send -> voucher counted by the payee', unit: 'ms', summary: summarize(p.deliveryMs) },
    { section: rebuild, metric: 'rebuild the book (open: read, unseal, verify, add)', unit: 'ms', summary: summarize(p.rebuild.openMs), reference: { label: 'ms read the entries alone', value: summarize(p.rebuild.readMs)?.median ?? Number.NaN } },
    { section: rebuild, metric: 'rebuild the book, CPU time of the process', unit: 'ms', summary: summarize(p.rebuild.openCpuMs) },
    { section: rebuild, metric: 'rebuild per voucher', unit: 'µs', summary: summarize(p.rebuild.openMs.map((ms) => (ms * 1000) / p.rebuild.vouchers)) },
    { section: rebuild, metric: 'read the entries off disk alone', unit: 'ms', summary: summarize(p.rebuild.readMs) },
  ];
}
