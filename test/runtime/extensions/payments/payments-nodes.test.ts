/**
 * Payments between two real nodes of two owners on loopback (issue 15):
 * vouchers go as sealed feed entries over the mesh, through partitions and
 * restarts; a restored payer never signs below what it signed; forks,
 * replays and forgeries are seen for what they are; statements agree.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BalanceRow, Statement } from '../../../../runtime/extensions/payments/reports.js';
import type { CreditCheck } from '../../../../runtime/extensions/payments/commands.js';
import { signVoucher, VOUCHER_ENTRY_TYPE, type Voucher } from '../../../../runtime/extensions/payments/signed-records.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { formatBalance, formatStatement } from '../../../../runtime/cli/format-payments.js';
import { formatStatus } from '../../../../runtime/cli/format-status.js';
import { waitFor } from '../../../support/mesh-node.js';
import { run, startPayPair, waitLinks, type PayNode, type PayPair } from './pay-nodes.js';

describe('payments between two nodes of two owners', () => {
  let dir: string;
  let pair: PayPair;
  let a: PayNode;
  let b: PayNode;
  const counter = (n: PayNode, name: string) => n.node.counters.get(name);
  const rowOf = async (n: PayNode, peer: PayNode, unit = 'credit') => (await run<BalanceRow[]>(n, 'pay/balance', { peer: peer.nodeId })).find((r) => r.unit === unit);
  const owedToB = async () => (await rowOf(b, a))?.owedToUs ?? 0;
  /** pay/send, retried while the payer refuses because it has not yet checked its own feed against a peer (just started). */
  const sendOnceReady = async (payer: PayNode, args: Record<string, unknown>): Promise<Voucher> => {
    let voucher: Voucher | undefined;
    await waitFor(async () => {
      const outcome = await payer.node.commands.run('pay/send', args);
      if (!outcome.ok) expect(outcome.code).toBe(ErrorCodes.PAYMENT_REFUSED);
      else voucher = outcome.result as Voucher;
      return outcome.ok;
    }, 30_000, status);
    return voucher as Voucher;
  };
  const status = () => JSON.stringify({ a: a.node.counters.snapshot(), b: b.node.counters.snapshot() });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-payments-'));
    // b gives a credit of 20 units; a gives b the default.
    pair = await startPayPair(dir, { b: { creditLimit: 20, units: ['credit', 'honey'] }, a: { units: ['credit', 'honey'] } });
    ({ a, b } = pair);
    await waitLinks(pair, true, status);
  }, 60_000);
  afterAll(async () => {
    await pair.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a pays b: cumulative vouchers reach b, and the amount owed never goes down', async () => {
    const seen: number[] = [];
    for (const amount of [3, 2, 5]) {
      const voucher = await run<Voucher>(a, 'pay/send', { payee: b.nodeId, unit: 'credit', amount, memo: { task: `t-${amount}` } });
      seen.push(voucher.cumulative);
      expect(voucher).toMatchObject({ v: 1, payer: a.nodeId, payee: b.nodeId, unit: 'credit' });
    }
    expect(seen).toEqual([3, 5, 10]);
    await waitFor(async () => (await owedToB()) === 10, 20_000, status);
    expect(await rowOf(a, b)).toMatchObject({ weOwe: 10, owedToUs: 0, net: -10 });
    expect(counter(b, 'payments.vouchers_received')).toBe(3);
    // The same amounts cannot be read by anyone else: the entries are sealed (the mesh relays them as ciphertext).
    const own = [];
    for await (const e of a.node.mesh!.store.read(a.nodeId, 1)) own.push(e.type);
    expect(new Set(own)).toEqual(new Set(['private']));
  });

  it('credit: b refuses work from a past its limit, and a settlement makes room again', async () => {
    // a owes b 10; b's limit for a is 20.
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 10 })).toEqual({ ok: true, outstanding: 10, limit: 20 });
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 11 })).toEqual({ ok: false, reason: 'credit-limit', outstanding: 10, limit: 20 });
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: 'aaaaaaaaaaaa', unit: 'credit', amount: 1 })).toMatchObject({ ok: false, reason: 'unknown-payer' });
    expect(counter(b, 'payments.credit_refused.credit-limit')).toBe(1);
    // A payee this node knows no certificate of, or a unit it does not use, is refused before anything is signed.
    await expect(a.node.commands.run('pay/send', { payee: 'aaaaaaaaaaaa', unit: 'credit', amount: 1 })).resolves.toMatchObject({ ok: false, code: ErrorCodes.PAYMENT_REFUSED, error: expect.stringContaining('not known here') as string });
    await expect(a.node.commands.run('pay/send', { payee: b.nodeId, unit: 'wax', amount: 1 })).resolves.toMatchObject({ ok: false, code: ErrorCodes.PAYMENT_REFUSED, error: expect.stringContaining('payments.units') as string });
    expect(counter(a, 'payments.vouchers_issued')).toBe(3);
    // Bad arguments are refused naming the field.
    const bad = await b.node.commands.run('pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 1.5 });
    expect(bad).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('field "amount"') as string });

    // The owners settle 6 by hand; b records it, and it reaches a.
    await expect(b.node.commands.run('pay/settle', { peer: a.nodeId, unit: 'credit', amount: 11 })).resolves.toMatchObject({ ok: false, code: ErrorCodes.PAYMENT_REFUSED });
    const settlement = await run<{ total: number; n: number }>(b, 'pay/settle', { peer: a.nodeId, unit: 'credit', amount: 6, note: 'cash at the market' });
    expect(settlement).toMatchObject({ n: 1, total: 6 });
    expect(await rowOf(b, a)).toMatchObject({ owedToUs: 4, settled: { byUs: 0, byPeer: 6 } });
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 16 })).toEqual({ ok: true, outstanding: 4, limit: 20 });
    await waitFor(async () => (await rowOf(a, b))?.weOwe === 4, 20_000, status);
  });

  it('an old voucher replayed is ignored; forged and malformed ones are refused and counted', async () => {
    const mesh = a.node.mesh!;
    const first = (await run<Statement>(b, 'pay/statement', { peer: a.nodeId, unit: 'credit' })).units[0]!.records.find((r) => r.kind === 'voucher' && r.number === 1);
    expect(first).toMatchObject({ cumulative: 3 });
    // a's node puts its first voucher again into a new entry of its feed: validly signed, but old.
    const old = signVoucher(a.node.identity, { payer: a.nodeId, payee: b.nodeId, unit: 'credit', seq: 1, cumulative: 3, t: first!.t as number, memo: { task: 't-3' } });
    await mesh.appendPrivate(VOUCHER_ENTRY_TYPE, old, [b.nodeId]);
    // A voucher whose amount was changed after signing, and one that is not a voucher at all.
    const next = signVoucher(a.node.identity, { payer: a.nodeId, payee: b.nodeId, unit: 'credit', seq: 9, cumulative: 1000, t: Date.now() });
    await mesh.appendPrivate(VOUCHER_ENTRY_TYPE, { ...next, cumulative: 1_000_000 }, [b.nodeId]);
    await mesh.appendPrivate(VOUCHER_ENTRY_TYPE, { v: 1, payer: a.nodeId, payee: b.nodeId, cumulative: 'lots' }, [b.nodeId]);
    // Validly signed, in a unit b does not use: b keeps no channel for it.
    await mesh.appendPrivate(VOUCHER_ENTRY_TYPE, signVoucher(a.node.identity, { payer: a.nodeId, payee: b.nodeId, unit: 'wax', seq: 1, cumulative: 5, t: Date.now() }), [b.nodeId]);
    await waitFor(() => counter(b, 'payments.vouchers_stale') >= 1 && counter(b, 'payments.refused.voucher_signature') >= 1 && counter(b, 'payments.refused.voucher_malformed') >= 1
      && counter(b, 'payments.refused.voucher_unit') >= 1, 20_000, status);
    expect((await run<BalanceRow[]>(b, 'pay/balance', {})).map((r) => r.unit)).toEqual(['credit']);
    expect(await rowOf(b, a)).toMatchObject({ owedToUs: 4, forked: false });
    expect(counter(b, 'payments.forks')).toBe(0);
  });

  it('vouchers signed while partitioned arrive after the heal, and both statements agree', async () => {
    pair.partition();
    await waitLinks(pair, false, status);
    // Both sides write while apart: a pays b twice, b pays a in honey, b records a settlement.
    await run(a, 'pay/send', { payee: b.nodeId, unit: 'credit', amount: 1 });
    await run(a, 'pay/send', { payee: b.nodeId, unit: 'credit', amount: 2 });
    await run(b, 'pay/send', { payee: a.nodeId, unit: 'honey', amount: 7 });
    await run(b, 'pay/settle', { peer: a.nodeId, unit: 'credit', amount: 1 });
    const apart = [await run<Statement>(a, 'pay/statement', { peer: b.nodeId }), await run<Statement>(b, 'pay/statement', { peer: a.nodeId })];
    expect(apart[0]!.digest).not.toBe(apart[1]!.digest);
    expect(await owedToB()).toBe(3); // 4 owed, 1 settled; a's two new vouchers not here yet

    pair.heal();
    const digests = async () => [(await run<Statement>(a, 'pay/statement', { peer: b.nodeId })).digest, (await run<Statement>(b, 'pay/statement', { peer: a.nodeId })).digest];
    await waitFor(async () => new Set(await digests()).size === 1, 30_000, status);
    const [sa, sb] = [await run<Statement>(a, 'pay/statement', { peer: b.nodeId }), await run<Statement>(b, 'pay/statement', { peer: a.nodeId })];
    expect(sa).toEqual(sb);
    const credit = sa.units.find((u) => u.unit === 'credit')!;
    const aToB = credit.channels.find((c) => c.payer === a.nodeId)!;
    expect(aToB).toMatchObject({ vouched: 13, settled: 7, outstanding: 6 });
    // Cumulative amounts go up with every voucher, in the order signed.
    const cumulative = credit.records.filter((r) => r.kind === 'voucher' && r.payer === a.nodeId).map((r) => r.cumulative as number);
    expect(cumulative).toEqual([3, 5, 10, 11, 13]);
    expect(sa.units.find((u) => u.unit === 'honey')!.channels.find((c) => c.payer === b.nodeId)).toMatchObject({ vouched: 7, outstanding: 7 });
    // Netting per unit: b owes a 7 honey, a owes b 6 credit.
    expect(await rowOf(a, b, 'honey')).toMatchObject({ owedToUs: 7, weOwe: 0, net: 7 });
    expect(await rowOf(b, a, 'credit')).toMatchObject({ owedToUs: 6, net: 6 });
    // What `apiary pay statement` and `apiary pay balance` print.
    const text = formatStatement(b.nodeId, sb);
    expect(text).toContain(`digest ${sa.digest}`);
    expect(text).toContain(`${a.nodeId} -> ${b.nodeId}: vouched 13 (voucher 5), settled 7, outstanding 6`);
    expect(formatBalance(b.nodeId, await run<BalanceRow[]>(b, 'pay/balance', {}))).toMatch(new RegExp(`${a.nodeId}  credit: we owe 0, owed to us 6 -> it owes us 6; .*credit limit 20`));
  }, 60_000);

  it('a restarted payer continues above; a payer restored from an older copy of its data dir cannot under-sign', async () => {
    await pair.restart(a);
    const afterRestart = await sendOnceReady(a, { payee: b.nodeId, unit: 'credit', amount: 1 });
    expect(afterRestart).toMatchObject({ seq: 6, cumulative: 14 });
    await waitFor(async () => (await owedToB()) === 7, 30_000, status);

    // A backup of a's data dir now, then more payments, then the backup is restored.
    await pair.stopNode(a);
    const backup = path.join(dir, 'a-backup');
    await cp(a.dir, backup, { recursive: true });
    await pair.startNode(a);
    await sendOnceReady(a, { payee: b.nodeId, unit: 'credit', amount: 4 });
    await waitFor(async () => (await owedToB()) === 11, 30_000, status);
    const heldByB = b.node.mesh!.store.head(a.nodeId).seq;
    await pair.stopNode(a);
    await rm(a.dir, { recursive: true, force: true });
    await cp(backup, a.dir, { recursive: true });
    await pair.startNode(a);
    expect(a.node.mesh!.store.head(a.nodeId).seq).toBeLessThan(heldByB);

    // Until it has heard b and its own entries have come back from b, it refuses to sign; then it signs above the highest it ever signed.
    const refusedBefore = counter(a, 'payments.sign_deferred');
    const voucher = await sendOnceReady(a, { payee: b.nodeId, unit: 'credit', amount: 1 });
    expect(counter(a, 'payments.sign_deferred')).toBeGreaterThan(refusedBefore);
    expect(voucher).toMatchObject({ seq: 8, cumulative: 19 });
    await waitFor(async () => (await owedToB()) === 12, 30_000, status);
    expect(counter(b, 'payments.forks')).toBe(0);
    expect(b.node.counters.get('feeds.fork')).toBe(0);
  }, 120_000);

  it('two vouchers at one seq are a fork: reported, kept as evidence, and the payer gets no more credit', async () => {
    const held = (await run<Statement>(b, 'pay/statement', { peer: a.nodeId, unit: 'credit' })).units[0]!.channels.find((c) => c.payer === a.nodeId)!;
    // a's node signs another voucher at the seq it last used, for less.
    const twin = signVoucher(a.node.identity, { payer: a.nodeId, payee: b.nodeId, unit: 'credit', seq: held.seq, cumulative: 1, t: Date.now() });
    await a.node.mesh!.appendPrivate(VOUCHER_ENTRY_TYPE, twin, [b.nodeId]);
    await waitFor(() => counter(b, 'payments.forks') === 1, 20_000, status);
    expect(await rowOf(b, a)).toMatchObject({ forked: true, owedToUs: 12 });
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 1 })).toMatchObject({ ok: false, reason: 'forked' });
    const evidence = (await run<Statement>(b, 'pay/statement', { peer: a.nodeId, unit: 'credit' })).forks;
    expect(evidence).toHaveLength(1);
    expect(evidence[0]).toMatchObject({ payer: a.nodeId, kind: 'same-seq', b: { seq: held.seq, cumulative: 1 } });
    const nodeStatus = await b.node.status();
    expect(nodeStatus.payments).toMatchObject({ forkedPayers: 1 });
    expect(formatStatus(nodeStatus)).toContain('Payments: 1 peer(s); owed to us 12 credit, 0 honey; we owe 0 credit, 7 honey; 1 FORKED payer(s)');
  });

  it('a restarted payee rebuilds the same book from the feeds it holds: same statement, same fork, same credit answer', async () => {
    const before = await run<Statement>(b, 'pay/statement', { peer: a.nodeId });
    await pair.restart(b);
    expect(await run<Statement>(b, 'pay/statement', { peer: a.nodeId })).toEqual(before);
    expect(await rowOf(b, a)).toMatchObject({ forked: true, owedToUs: 12 });
    expect(await run<CreditCheck>(b, 'pay/credit-check', { payer: a.nodeId, unit: 'credit', amount: 1 })).toMatchObject({ ok: false, reason: 'forked' });
  }, 60_000);
});
