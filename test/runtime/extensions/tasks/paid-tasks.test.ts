/**
 * Tasks paid for with the real payments extension, between three whole nodes
 * of three owners on loopback (no stand-ins): the requester pays the winner
 * with cumulative vouchers; a provider at the credit limit its owner's
 * mandate allows refuses, and the other wins; a settlement makes room again;
 * requests made in a burst cannot together pass the daily budget; and both
 * ends' statements agree.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { mandateBodySchema, signMandate, type MandateBody } from '../../../../runtime/extensions/tasks/mandate.js';
import type { BalanceRow, Statement } from '../../../../runtime/extensions/payments/reports.js';
import { waitFor } from '../../../support/mesh-node.js';
import { run, startPayNodes, type PayNode, type PayNodes } from '../payments/pay-nodes.js';

/** The providers' simulated hives run 600x faster than the wall clock: a day ahead still finds their latest reading. */
const LATEST = Date.now() + 86_400_000;

interface Shown { id: string; phase: string; peer?: string; price?: number; pending?: string; refusals: number }
interface Full { id: string; phase: string; peer?: string; paid?: { amount: number }; refusals: { bidder: string; reason: string }[]; result?: Record<string, unknown> }

/** Writes `<dir>/mandate.json`, signed by the owner key in `<dir>/owner.json`. */
async function writeMandate(dir: string, body: Partial<MandateBody>): Promise<void> {
  const owner = (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity;
  const { identity } = await loadOrCreateIdentity(dir);
  const mandate = signMandate(owner, mandateBodySchema.parse({
    v: 1, node: identity.nodeId, expires: new Date(Date.now() + 86_400_000).toISOString(),
    sell: { kinds: ['reading-at'], minPrice: 0 }, buy: { kinds: ['reading-at'], maxPrice: 5 }, dailyBudget: 100,
    data: { rawAudio: false, sellChannels: ['temperature'] }, ...body,
  }));
  await writeFile(path.join(dir, 'mandate.json'), JSON.stringify(mandate));
}

describe('tasks paid with vouchers, three nodes of three owners', () => {
  let dir: string;
  let bed: PayNodes;
  let r: PayNode;
  let cheap: PayNode;
  let dear: PayNode;
  const status = () => JSON.stringify(Object.fromEntries(Object.values(bed.nodes).map((n) => [n.name, n.node.counters.snapshot()])));
  const weOwe = async (payee: PayNode) => (await run<BalanceRow[]>(r, 'pay/balance', { peer: payee.nodeId })).find((row) => row.unit === 'credit')?.weOwe ?? 0;
  const owed = async (payee: PayNode) => (await run<BalanceRow[]>(payee, 'pay/balance', { peer: r.nodeId })).find((row) => row.unit === 'credit')?.owedToUs ?? 0;

  /** One reading-at task through the registry, as `apiary tasks request` sends it; waits for it to settle. */
  async function task(maxPrice = 5): Promise<Full> {
    const shown = await run<Shown>(r, 'tasks/request', { kind: 'reading-at', input: { channel: 'temperature', t: LATEST }, maxPrice, deadline: '20s' });
    let full: Full | undefined;
    await waitFor(async () => {
      full = await run<Full>(r, 'tasks/show', { id: shown.id });
      return full.phase === 'completed' || full.phase === 'failed' || full.phase === 'input-required';
    }, 30_000, () => `${JSON.stringify(full)} ${status()}`);
    return full as Full;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-paid-tasks-'));
    const names = ['r', 'cheap', 'dear'];
    for (const name of names) await writeMandate(path.join(dir, name), name === 'cheap' ? { creditLimitPerPeer: 4 } : {});
    const provider = (price: number) => (d: string) => ({
      device: { simulation: { speed: 600 }, sensors: { temperature: { interval: '10s' } } },
      tasks: { enabled: true, mandate: path.join(d, 'mandate.json'), offers: [{ kind: 'reading-at', price, eta: '200ms' }], bidWindow: '700ms', ackTimeout: '2s', grace: '2s', spotCheck: 0 },
    });
    bed = await startPayNodes(dir, {
      r: { extra: (d) => ({ tasks: { enabled: true, mandate: path.join(d, 'mandate.json'), bidWindow: '700ms', ackTimeout: '2s', grace: '2s', spotCheck: 0 } }) },
      cheap: { payments: { creditLimit: 50 }, extra: provider(2) },
      dear: { extra: provider(3) },
    });
    ({ r, cheap, dear } = bed.nodes as Record<'r' | 'cheap' | 'dear', PayNode>);
    // Every node linked to both others, and the providers' readings on disk.
    await waitFor(() => Object.values(bed.nodes).every((n) => new Set(n.node.mesh?.linkedPeers()).size === 2), 30_000, status);
    const first = await task(5);
    expect(first, JSON.stringify(first)).toMatchObject({ phase: 'completed' });
  }, 120_000);
  afterAll(async () => {
    await bed.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the cheapest bid wins and is paid with a voucher the payee holds; the statements agree', async () => {
    const done = await task(5);
    expect(done, JSON.stringify(done)).toMatchObject({ phase: 'completed', peer: cheap.nodeId, paid: { amount: 2 } });
    expect(done.result).toMatchObject({ channel: 'temperature' });
    // Two tasks paid (this one and the first): the payer vouched 4 in all, and the payee comes to hold it.
    expect(await weOwe(cheap)).toBe(4);
    await waitFor(async () => (await owed(cheap)) === 4, 20_000, status);
    const mine = await run<Statement>(r, 'pay/statement', { peer: cheap.nodeId });
    const theirs = await run<Statement>(cheap, 'pay/statement', { peer: r.nodeId });
    expect(mine.digest, JSON.stringify({ mine, theirs })).toBe(theirs.digest);
  });

  it('at the credit limit its owner\'s mandate allows (4, under the node\'s own 50), a provider refuses and the other wins; a settlement makes room', async () => {
    expect(await owed(cheap)).toBe(4); // two tasks at 2 so far
    const done = await task(5);
    expect(done, JSON.stringify(done)).toMatchObject({ phase: 'completed', peer: dear.nodeId, paid: { amount: 3 } });
    expect(done.refusals).toContainEqual({ bidder: cheap.nodeId, reason: 'credit-limit' });
    expect(cheap.node.counters.get('payments.credit_refused.credit-limit')).toBeGreaterThan(0);
    await waitFor(async () => (await owed(dear)) === 3, 20_000, status);

    // The owners settle 4 by other means; the payee records it, and the cheap node bids again.
    await run(cheap, 'pay/settle', { peer: r.nodeId, unit: 'credit', amount: 4 });
    expect((await run<BalanceRow[]>(cheap, 'pay/balance', { peer: r.nodeId }))[0]).toMatchObject({ owedToUs: 0, net: 0, settled: { byPeer: 4 } });
    const after = await task(5);
    expect(after, JSON.stringify(after)).toMatchObject({ phase: 'completed', peer: cheap.nodeId, paid: { amount: 2 } });
  });

  it('a requester that crashed after paying and before saving the task finds its voucher when it reads the result again: paid once, and recorded paid', async () => {
    const done = await task(5);
    expect(done, JSON.stringify(done)).toMatchObject({ phase: 'completed', paid: { amount: expect.any(Number) as number } });
    const payee = Object.values(bed.nodes).find((n) => n.nodeId === done.peer) as PayNode;
    const owedBefore = await weOwe(payee);
    await bed.stopNode(r);
    // What that crash leaves: the voucher in the feed, the task on disk still working, unpaid and without its result.
    const file = path.join(r.dir, 'tasks', `r-${done.id}.json`);
    const unpaid = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    delete unpaid.paid;
    delete unpaid.result;
    await writeFile(file, JSON.stringify({ ...unpaid, phase: 'working' }));
    await bed.startNode(r);
    let again: Full | undefined;
    await waitFor(async () => (again = await run<Full>(r, 'tasks/show', { id: done.id })).phase === 'completed', 30_000, () => `${JSON.stringify(again)} ${status()}`);
    expect(again?.paid).toMatchObject({ amount: done.paid?.amount });
    expect(await weOwe(payee)).toBe(owedBefore);
    expect(r.node.counters.get('tasks.paid_before_restart')).toBe(1);
    await waitFor(() => Object.values(bed.nodes).every((n) => new Set(n.node.mesh?.linkedPeers()).size === 2), 30_000, status);
  }, 60_000);

  it('requests made at once count what is under way: a burst cannot pass the daily budget', async () => {
    // The mandate's budget is 100; what was spent so far is in the node's status. Bids are open long enough to make the burst.
    const { spentToday } = await run<{ tasks: { mandate: { spentToday: number } } }>(r, 'status', {}).then((s) => s.tasks.mandate);
    const fit = Math.floor((100 - spentToday) / 5);
    const asked: Shown[] = [];
    for (let i = 0; i <= fit + 1; i++) asked.push(await run<Shown>(r, 'tasks/request', { kind: 'reading-at', input: { channel: 'temperature', t: LATEST }, maxPrice: 5, deadline: '20s' }));
    // The first `fit` go out, each holding 5; the next would pass 100, so they wait for the owner.
    expect(asked.map((a) => a.phase)).toEqual([...Array<string>(fit).fill('bidding'), 'input-required', 'input-required']);
    expect(asked[fit]?.pending).toBe(`budget: ${spentToday} of 100 credit spent today and ${5 * fit} held by tasks under way, this task may cost 5`);
  });
});
