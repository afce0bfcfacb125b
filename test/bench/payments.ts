/**
 * Payments between nodes (issue 15's benchmark): two real nodes of two
 * owners on loopback (createNode, as `apiary start` builds them), payments
 * on, linked through counting TCP proxies. Node a pays node b one voucher at
 * a time (`pay/send`, a task id as memo, as the tasks extension pays), and
 * each voucher is measured alone, from the command until b has counted it:
 * the bytes it added to a's feed store on disk and to b's copy of a's feed,
 * its bytes on the wire (both proxies, both ways: background gossip in that
 * window included, so the maximum shows an anti-entropy round), and the time.
 * References from the same run: a plain signed feed entry with an empty body,
 * a private one (sealed to b) with an empty body, and the voucher's canonical
 * JSON. Then the start-up cost: b's feeds are filled to `rebuildVouchers`
 * vouchers, and a fresh payment service rebuilds its channel book from them
 * (what every start does), against reading the same entries off disk alone.
 * `npm run bench -- --only payments`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createNode } from '../../runtime/apps/index.js';
import { canonicalJson } from '../../runtime/canonical-json.js';
import { TcpProxy } from '../../runtime/cli/demo/link-proxy.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../runtime/core/apiary-node.js';
import { Counters } from '../../runtime/counters.js';
import { IssuedState } from '../../runtime/extensions/payments/issued-state.js';
import { PaymentService } from '../../runtime/extensions/payments/payment-service.js';
import { signVoucher, VOUCHER_ENTRY_TYPE, type Voucher } from '../../runtime/extensions/payments/signed-records.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../runtime/identity/identity.js';
import type { Mesh } from '../../runtime/mesh/mesh.js';
import { sleep } from './processes.js';

export interface PaymentsPlan {
  /** Vouchers measured one at a time. */
  readonly vouchers: number;
  /** Plain and private empty entries measured, for the references. */
  readonly references: number;
  /** Vouchers b holds when its book is rebuilt. */
  readonly rebuildVouchers: number;
  readonly rebuildRuns: number;
}
export const PAYMENTS_FULL: PaymentsPlan = { vouchers: 200, references: 20, rebuildVouchers: 10_000, rebuildRuns: 5 };
export const PAYMENTS_QUICK: PaymentsPlan = { vouchers: 50, references: 10, rebuildVouchers: 2_000, rebuildRuns: 3 };

export interface PaymentsResults {
  /** Per voucher: bytes added to the payer's own feed store. */
  readonly payerFeedBytes: number[];
  /** Per voucher: bytes added to the payee's copy of the payer's feed. */
  readonly payeeFeedBytes: number[];
  /** Per voucher: bytes through both proxies, both ways, from pay/send until the payee counted it. */
  readonly wireBytes: number[];
  /** Per voucher: ms from pay/send to the payee counting it. */
  readonly deliveryMs: number[];
  /** Per voucher: its canonical JSON (signature included). */
  readonly voucherJsonBytes: number[];
  /** Per entry: a plain signed entry with an empty body, in the payer's feed store. */
  readonly plainEntryBytes: number[];
  /** Per entry: a private entry with an empty body sealed to the payee, in the payer's feed store. */
  readonly privateEntryBytes: number[];
  readonly rebuild: {
    readonly vouchers: number;
    /** ms for a fresh payment service to rebuild its book from every feed held (open()). */
    readonly openMs: number[];
    /** CPU ms of this process in that time (less sensitive than openMs to other load on the machine). */
    readonly openCpuMs: number[];
    /** ms to read the same entries off disk, nothing else. */
    readonly readMs: number[];
  };
}

interface BenchNode {
  readonly name: 'a' | 'b';
  readonly dir: string;
  readonly nodeId: string;
  readonly node: ApiaryNode;
  readonly inbound: TcpProxy;
}

async function startPair(dir: string): Promise<{ a: BenchNode; b: BenchNode; proxies: TcpProxy[] }> {
  const dirs = { a: path.join(dir, 'a'), b: path.join(dir, 'b') };
  const owners = await Promise.all([dirs.a, dirs.b].map(async (d) => (await loadOrCreateKeyFile(path.join(d, 'owner.json'))).identity.publicKey));
  const ids = { a: (await loadOrCreateIdentity(dirs.a)).identity.nodeId, b: (await loadOrCreateIdentity(dirs.b)).identity.nodeId };
  const proxies = { a: new TcpProxy(), b: new TcpProxy() };
  await proxies.a.start();
  await proxies.b.start();
  const make = (name: 'a' | 'b'): BenchNode => {
    const other = name === 'a' ? 'b' : 'a';
    const node = createNode(parseConfig({
      app: 'sensor-node',
      node: { name: `bench-${name}`, dataDir: dirs[name] },
      broker: { host: '127.0.0.1', port: 0 },
      homeAssistant: { enabled: false },
      device: { simulation: { speed: 1 } },
      decisions: [],
      ask: { record: 'off' },
      mesh: {
        share: [], commitInterval: '20ms', antiEntropyInterval: '5s', acceptRelayedPlainLinks: true,
        neighbours: [{ url: proxies[other].url, nodeId: ids[other] }],
        trust: { owners: owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
      },
      payments: { enabled: true, creditLimit: 1_000_000_000 },
    }), pino({ level: 'silent' }));
    return { name, dir: dirs[name], nodeId: ids[name], node, inbound: proxies[name] };
  };
  const a = make('a');
  const b = make('b');
  for (const n of [a, b]) {
    await n.node.start();
    n.inbound.setTarget(n.node.brokerPort as number);
  }
  return { a, b, proxies: [proxies.a, proxies.b] };
}

/** Bytes `holder` keeps on disk for `origin`'s feed. */
function feedBytes(holder: BenchNode, origin: string): number {
  return (holder.node.mesh as Mesh).store.stats().find((f) => f.origin === origin)?.bytes ?? 0;
}

async function until(what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (let waited = 0; !done(); waited += 1) {
    if (waited > timeoutMs) throw new Error(`payments bench: ${what} within ${timeoutMs / 1000} s`);
    await sleep(1);
  }
}

async function pay(a: BenchNode, b: BenchNode, amount: number): Promise<Voucher> {
  const outcome = await a.node.commands.run('pay/send', { payee: b.nodeId, unit: 'credit', amount, memo: { task: randomUUID() } });
  if (!outcome.ok) throw new Error(`payments bench: pay/send refused: ${outcome.code} ${outcome.error}`);
  return outcome.result as Voucher;
}

/** ms for `work`. */
async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

export async function measurePayments(tmp: string, plan: PaymentsPlan, progress: (line: string) => void): Promise<PaymentsResults> {
  const dir = await mkdtemp(path.join(tmp, 'payments-'));
  const { a, b, proxies } = await startPair(dir);
  try {
    const meshA = a.node.mesh as Mesh;
    const meshB = b.node.mesh as Mesh;
    await until('the two nodes did not link', () => meshA.linkedPeers().length > 0 && meshB.linkedPeers().length > 0);
    // The payer signs nothing until it has heard a peer; the first voucher is not measured (the hellos are still going).
    for (let waited = 0; ; waited += 50) {
      const outcome = await a.node.commands.run('pay/send', { payee: b.nodeId, unit: 'credit', amount: 1 });
      if (outcome.ok) break;
      if (waited > 30_000) throw new Error(`payments bench: pay/send still refused after 30 s: ${outcome.error}`);
      await sleep(50);
    }
    await until('the first voucher did not reach b', () => b.node.counters.get('payments.vouchers_received') === 1);
    await sleep(1_000);
    const wire = () => proxies.reduce((sum, p) => sum + p.bytes.up + p.bytes.down, 0);
    const received = () => b.node.counters.get('payments.vouchers_received');

    const r = { payerFeedBytes: [] as number[], payeeFeedBytes: [] as number[], wireBytes: [] as number[], deliveryMs: [] as number[], voucherJsonBytes: [] as number[] };
    for (let k = 0; k < plan.vouchers; k++) {
      const before = { wire: wire(), payer: feedBytes(a, a.nodeId), payee: feedBytes(b, a.nodeId), received: received() };
      const start = performance.now();
      const voucher = await pay(a, b, 1 + (k % 7));
      await until(`voucher ${voucher.seq} did not reach b`, () => received() > before.received);
      r.deliveryMs.push(performance.now() - start);
      r.wireBytes.push(wire() - before.wire);
      r.payerFeedBytes.push(feedBytes(a, a.nodeId) - before.payer);
      r.payeeFeedBytes.push(feedBytes(b, a.nodeId) - before.payee);
      r.voucherJsonBytes.push(Buffer.byteLength(canonicalJson(voucher)));
      if ((k + 1) % 50 === 0) progress(`payments: ${k + 1}/${plan.vouchers} vouchers`);
    }

    const plainEntryBytes: number[] = [];
    const privateEntryBytes: number[] = [];
    for (let k = 0; k < plan.references; k++) {
      let before = feedBytes(a, a.nodeId);
      await meshA.append('bench.plain', {});
      plainEntryBytes.push(feedBytes(a, a.nodeId) - before);
      before = feedBytes(a, a.nodeId);
      await meshA.appendPrivate('bench.private', {}, [b.nodeId]);
      privateEntryBytes.push(feedBytes(a, a.nodeId) - before);
    }

    const rebuild = await measureRebuild(a, b, plan, progress);
    return { ...r, plainEntryBytes, privateEntryBytes, rebuild };
  } finally {
    for (const n of [a, b]) await n.node.stop();
    await Promise.all(proxies.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Fills a's feed up to `rebuildVouchers` vouchers to b (signed as pay/send
 * signs them, without its per-voucher state write: a's own state is not what
 * is measured), lets b replicate them, then times b rebuilding its book.
 */
async function measureRebuild(a: BenchNode, b: BenchNode, plan: PaymentsPlan, progress: (line: string) => void): Promise<PaymentsResults['rebuild']> {
  const meshA = a.node.mesh as Mesh;
  const meshB = b.node.mesh as Mesh;
  const outcome = await a.node.commands.run('pay/statement', { peer: b.nodeId, unit: 'credit' });
  if (!outcome.ok) throw new Error(`payments bench: pay/statement refused: ${outcome.error}`);
  const statement = outcome.result as { units: { channels: { payer: string; seq: number; vouched: number }[] }[] };
  const held = statement.units[0]?.channels.find((c) => c.payer === a.nodeId) ?? { seq: 0, vouched: 0 };
  let { seq, vouched } = held;
  const toAdd = plan.rebuildVouchers - seq;
  for (let k = 0; k < toAdd; k++) {
    seq += 1;
    vouched += 1 + (k % 7);
    const voucher = signVoucher(a.node.identity, { payer: a.nodeId, payee: b.nodeId, unit: 'credit', seq, cumulative: vouched, t: Date.now(), memo: { task: randomUUID() } });
    await meshA.appendPrivate(VOUCHER_ENTRY_TYPE, voucher, [b.nodeId]);
    if ((k + 1) % 2_000 === 0) progress(`payments: ${k + 1}/${toAdd} more vouchers signed for the rebuild`);
  }
  const head = meshA.store.head(a.nodeId).seq;
  await until(`b did not replicate a's ${head} entries`, () => meshB.store.head(a.nodeId).seq === head, 300_000);
  progress(`payments: b holds ${seq} vouchers of a; rebuilding its book ${plan.rebuildRuns} times`);
  const readMs: number[] = [];
  const openMs: number[] = [];
  const openCpuMs: number[] = [];
  let entries = 0;
  for (let run = 0; run < plan.rebuildRuns; run++) {
    readMs.push(await timed(async () => {
      entries = 0;
      for (const origin of Object.keys(meshB.store.have())) for await (const entry of meshB.store.read(origin, 1)) entries += entry.seq > 0 ? 1 : 0;
    }));
    const service = new PaymentService({
      mesh: meshB, identity: b.node.identity, config: { creditLimit: 100, perPeer: {}, units: ['credit'] }, counters: new Counters(), logger: pino({ level: 'silent' }),
      state: new IssuedState(path.join(b.dir, `rebuild-${run}.json`)),
      appended: () => Promise.resolve(),
    });
    const cpu = process.cpuUsage();
    openMs.push(await timed(() => service.open()));
    const used = process.cpuUsage(cpu);
    openCpuMs.push((used.user + used.system) / 1000);
    const rebuilt = service.book.get(a.nodeId, b.nodeId, 'credit')?.vouchers.at(-1);
    if (rebuilt?.seq !== seq || rebuilt.cumulative !== vouched) throw new Error(`payments bench: the rebuilt book ends at voucher ${rebuilt?.seq}, not ${seq}`);
  }
  if (entries < seq) throw new Error(`payments bench: read ${entries} entries, fewer than the ${seq} vouchers`);
  return { vouchers: seq, openMs, openCpuMs, readMs };
}
