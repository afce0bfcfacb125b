/** `apiary pay balance|statement|send|settle|credit-check` replies as text (the extension's own shapes: runtime/extensions/payments/). */
import type { CreditCheck } from '../extensions/payments/commands.js';
import type { BalanceRow, Statement } from '../extensions/payments/reports.js';
import type { Settlement, Voucher } from '../extensions/payments/signed-records.js';

export function formatBalance(nodeId: string, rows: readonly BalanceRow[]): string {
  if (rows.length === 0) return `node ${nodeId}: no payments with any peer yet`;
  const lines = rows.map((r) => {
    const net = r.net > 0 ? `it owes us ${r.net}` : r.net < 0 ? `we owe it ${-r.net}` : 'even';
    return `  ${r.peer}  ${r.unit}: we owe ${r.weOwe}, owed to us ${r.owedToUs} -> ${net}; settled by us ${r.settled.byUs}, by it ${r.settled.byPeer}; ` +
      `credit limit ${r.creditLimit}${r.forked ? '; FORKED: it signed two vouchers that contradict each other (see pay statement)' : ''}`;
  });
  return [`node ${nodeId}: payments per peer and unit (netted)`, ...lines].join('\n');
}

export function formatStatement(nodeId: string, s: Statement): string {
  const out = [`node ${nodeId}: statement between ${s.parties[0]} and ${s.parties[1]}`, `  digest ${s.digest} (the same on both nodes once they hold the same entries)`];
  if (s.units.length === 0) out.push('  no vouchers or settlements between them');
  for (const u of s.units) {
    out.push(`  ${u.unit}: ${s.parties[0]} ${u.net >= 0 ? `owes ${s.parties[1]} ${u.net}` : `is owed ${-u.net} by ${s.parties[1]}`} after netting`);
    for (const c of u.channels) out.push(`    ${c.payer} -> ${c.payee}: vouched ${c.vouched} (voucher ${c.seq}), settled ${c.settled}, outstanding ${c.outstanding}`);
    for (const r of u.records) {
      const what = r.kind === 'voucher' ? `voucher ${String(r.number)}: cumulative ${String(r.cumulative)}` : `settlement ${String(r.number)}: ${String(r.amount)} (total ${String(r.total)})`;
      out.push(`      ${new Date(r.t as number).toISOString()}  ${String(r.payer)} -> ${String(r.payee)}  ${what}`);
    }
  }
  for (const f of s.forks) out.push(`  FORK (${f.kind}): ${f.payer} signed two ${f.unit} vouchers that contradict each other; both are in the JSON reply (--json)`);
  return out.join('\n');
}

export function formatVoucher(nodeId: string, v: Voucher): string {
  return `node ${nodeId}: voucher ${v.seq} to ${v.payee}: owes ${v.cumulative} ${v.unit} in all; it reaches the payee sealed in this node's feed`;
}

export function formatSettlement(nodeId: string, s: Settlement): string {
  return `node ${nodeId}: recorded settlement ${s.n} from ${s.payer}: ${s.amount} ${s.unit} (${s.total} in all)`;
}

export function formatCreditCheck(nodeId: string, c: CreditCheck): string {
  const head = c.ok ? 'would work on credit' : `would refuse (${c.reason})`;
  return `node ${nodeId}: ${head}: the payer owes ${c.outstanding} (netted), credit limit ${c.limit}`;
}
