/**
 * "A voucher lost on the way loses nothing: the next one covers it", end to
 * end between two real nodes. Over the mesh a voucher is not lost to a link
 * fault (feeds are append-only, catch-up delivers it later); it is lost for
 * good when the payer's retention drops it before the payee could fetch it:
 * here the two are apart while the payer pays on, its feed passes
 * `mesh.retention.maxBytesPerOrigin`, and its oldest segments, with the
 * first vouchers in them, are deleted. The payee then meets the feed midway
 * and never sees those vouchers; the ones it does see carry the whole amount.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BalanceRow, Statement } from '../../../../runtime/extensions/payments/reports.js';
import type { Voucher } from '../../../../runtime/extensions/payments/signed-records.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { waitFor } from '../../../support/mesh-node.js';
import { run, startPayPair, waitLinks, type PayNode, type PayPair } from './pay-nodes.js';

describe('a voucher the payee never receives is covered by the next', () => {
  let dir: string;
  let pair: PayPair;
  let a: PayNode;
  let b: PayNode;
  const status = () => JSON.stringify({ a: a.node.counters.snapshot(), b: b.node.counters.snapshot() });
  const rowOf = async (n: PayNode, peer: PayNode) => (await run<BalanceRow[]>(n, 'pay/balance', { peer: peer.nodeId })).find((r) => r.unit === 'credit');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-payments-dropped-'));
    // The payer keeps at most 64 KiB of its own feed, in 4 KiB segments: some 55 vouchers.
    pair = await startPayPair(dir, {}, { a: { mesh: { retention: { maxBytesPerOrigin: '64KiB' } }, extra: () => ({ storage: { segmentBytes: '4KiB' } }) } });
    ({ a, b } = pair);
    await waitLinks(pair, true, status);
  }, 60_000);
  afterAll(async () => {
    await pair.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the payer pays on while apart, its retention drops the first vouchers, and the payee is owed the whole amount', async () => {
    pair.partition();
    await waitLinks(pair, false, status);
    const amounts = Array.from({ length: 80 }, (_, k) => 1 + (k % 5));
    const total = amounts.reduce((sum, x) => sum + x, 0);
    const sent: Voucher[] = [];
    for (const [k, amount] of amounts.entries()) {
      // Heard b since it started, so it signs while apart; each voucher is the next.
      const outcome = await a.node.commands.run('pay/send', { payee: b.nodeId, unit: 'credit', amount, memo: { task: `task-${k}` } });
      if (!outcome.ok) expect.fail(`pay/send ${k}: ${outcome.code} ${outcome.error}`);
      sent.push(outcome.result as Voucher);
    }
    expect(sent.at(-1)).toMatchObject({ seq: 80, cumulative: total });
    // The payer's own feed no longer holds its first vouchers.
    const own = a.node.mesh!.store.stats().find((f) => f.origin === a.nodeId)!;
    expect(own.seq).toBe(80);
    expect(own.firstSeq).toBeGreaterThan(10);
    expect(b.node.mesh!.store.head(a.nodeId).seq).toBe(0);

    pair.heal();
    await waitFor(async () => (await rowOf(b, a))?.owedToUs === total, 30_000, status);
    // b started a's feed where a's retention left it: vouchers 1 .. firstSeq-1 never reached it, and nothing is missing from what it is owed.
    const held = b.node.mesh!.store.stats().find((f) => f.origin === a.nodeId)!;
    expect(held.firstSeq).toBe(own.firstSeq);
    expect(b.node.counters.get('feeds.joined_late_skipped')).toBe(own.firstSeq - 1);
    expect(b.node.counters.get('payments.vouchers_received')).toBe(80 - own.firstSeq + 1);
    expect(b.node.counters.get('payments.forks')).toBe(0);
    const seen = (await run<Statement>(b, 'pay/statement', { peer: a.nodeId })).units[0]!.records.filter((r) => r.kind === 'voucher');
    expect(seen.map((r) => r.number)).toEqual(Array.from({ length: 80 - own.firstSeq + 1 }, (_, i) => own.firstSeq + i));
    expect(seen.at(-1)).toMatchObject({ number: 80, cumulative: total });
    expect(await rowOf(b, a)).toMatchObject({ owedToUs: total, forked: false });
    expect(await rowOf(a, b)).toMatchObject({ weOwe: total });
  }, 60_000);

  it('restarted, the payer rebuilds the same book as the payee from what its feed kept, and signs above the vouchers it no longer holds', async () => {
    await pair.restart(a);
    const [sa, sb] = [await run<Statement>(a, 'pay/statement', { peer: b.nodeId }), await run<Statement>(b, 'pay/statement', { peer: a.nodeId })];
    expect(sa).toEqual(sb);
    let next: Voucher | undefined;
    await waitFor(async () => {
      const outcome = await a.node.commands.run('pay/send', { payee: b.nodeId, unit: 'credit', amount: 2 });
      if (!outcome.ok) expect(outcome.code).toBe(ErrorCodes.PAYMENT_REFUSED); // not yet heard b since the restart
      else next = outcome.result as Voucher;
      return outcome.ok;
    }, 30_000, status);
    const before = sb.units[0]!.channels.find((c) => c.payer === a.nodeId)!;
    expect(next).toMatchObject({ seq: 81, cumulative: before.vouched + 2 });
    await waitFor(async () => (await rowOf(b, a))?.owedToUs === before.vouched + 2, 30_000, status);
    expect(b.node.counters.get('payments.forks')).toBe(0);
  }, 60_000);
});
