/**
 * A payer killed with SIGKILL in the middle of paying never signs a second
 * history. The payer is a whole node (the CLI, a child process) paid through
 * by three clients at once over MQTT (`pay/send`); it is killed three times,
 * each at another step of a signing: while issued.json's temp file is
 * written, just after it is renamed into place, and just after a voucher
 * went into its feed. Each time issued.json must load and cover every
 * voucher a client got, and the node, restarted on the same data dir, goes
 * on above it. In the end the payee holds a history with no fork (every
 * voucher above the one before in number and amount), is owed between what
 * the clients were told was paid and what they asked, and both statements
 * agree.
 */
import { existsSync, watch } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { freePort } from '../../../../runtime/cli/demo/mesh-demo.js';
import { requestNode } from '../../../../runtime/cli/node-request.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { loadOrCreateIdentity } from '../../../../runtime/identity/identity.js';
import { IssuedState } from '../../../../runtime/extensions/payments/issued-state.js';
import type { BalanceRow, Statement } from '../../../../runtime/extensions/payments/reports.js';
import { VOUCHER_ENTRY_TYPE, type Voucher } from '../../../../runtime/extensions/payments/signed-records.js';
import { ownerKeyOf, waitFor } from '../../../support/mesh-node.js';
import { startNodeProcess, type NodeProcess } from '../../../support/node-process.js';
import { createPayNode, payNodeConfig } from './pay-nodes.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a payer killed mid-payments', () => {
  let dir: string | undefined;
  let payee: ApiaryNode | undefined;
  let running: NodeProcess | undefined;
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await payee?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restarted after each SIGKILL, never signs at or below what it signed, and the two statements agree', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-payer-crash-'));
    const dirs = { a: path.join(dir, 'a'), b: path.join(dir, 'b') };
    const owners = [await ownerKeyOf(dirs.a), await ownerKeyOf(dirs.b)];
    const ids = { a: (await loadOrCreateIdentity(dirs.a)).identity.nodeId, b: (await loadOrCreateIdentity(dirs.b)).identity.nodeId };
    const port = await freePort();
    payee = createPayNode(payNodeConfig({ name: 'b', dir: dirs.b, neighbours: [{ url: `mqtt://127.0.0.1:${port}`, nodeId: ids.a }], owners }));
    await payee.start();
    const b = payee;
    const onB = async <T>(command: string, commandArgs: Record<string, unknown>): Promise<T> => {
      const outcome = await b.commands.run(command, commandArgs);
      if (!outcome.ok) throw new Error(`${command}: ${outcome.code} ${outcome.error}`);
      return outcome.result as T;
    };
    const configFile = path.join(dir, 'a.yaml');
    await writeFile(configFile, JSON.stringify({
      ...payNodeConfig({ name: 'a', dir: dirs.a, neighbours: [{ url: `mqtt://127.0.0.1:${b.brokerPort as number}`, nodeId: ids.b }], owners }),
      log: { level: 'warn' },
    }));
    const args = ['--config', configFile, '--data-dir', dirs.a, '--port', String(port)];
    running = await startNodeProcess(args);
    const output = () => running?.output() ?? '';
    const ask = (command: string, commandArgs: Record<string, unknown>) => requestNode({ url: `mqtt://127.0.0.1:${port}`, topicPrefix: 'apiary', nodeId: ids.a, command, args: commandArgs, timeoutMs: 3_000 });

    // Three clients pay all along; what each learns is kept.
    const replied: Voucher[] = [];
    let paidAsked = 0; // amounts asked and not refused (a request cut off by the kill may or may not have been signed)
    let paidTold = 0; // amounts of the vouchers the clients got back
    let paying = true;
    const client = async (offset: number) => {
      for (let k = offset; paying; k += 3) {
        const amount = 1 + (k % 7);
        const reply = await ask('pay/send', { payee: ids.b, unit: 'credit', amount, memo: { task: `task-${k}` } }).catch(() => undefined);
        if (reply?.ok) {
          replied.push(reply.result as Voucher);
          paidTold += amount;
        }
        // Refused, nothing signed: still starting after a restart, or not yet caught up with its own feed.
        if (reply && !reply.ok) expect([ErrorCodes.NODE_STARTING, ErrorCodes.PAYMENT_REFUSED], `${reply.code} ${reply.error}`).toContain(reply.code);
        if (!reply?.ok) await sleep(50);
        paidAsked += reply && !reply.ok ? 0 : amount;
      }
    };
    const clients = [0, 1, 2].map((i) => client(i));

    const issuedFile = IssuedState.fileIn(dirs.a);
    let marksTaken = 0;
    const feedDir = path.join(dirs.a, 'mesh', 'feeds', ids.a);
    /** Kills the payer at the first event `at` sees, once it has paid `more` vouchers since `from`. */
    const killWhen = async (watchDir: string, at: (name: string) => boolean, more: number) => {
      const from = replied.length;
      await waitFor(() => replied.length >= from + more && existsSync(watchDir), 30_000, output);
      const child = running as NodeProcess;
      let fired = false;
      const watcher = watch(watchDir, (_event, name) => {
        if (!fired && name !== null && at(name)) {
          fired = true;
          child.child.kill('SIGKILL');
        }
      });
      try {
        await waitFor(() => fired, 30_000, output);
      } finally {
        watcher.close();
      }
      expect((await child.exited).signal).toBe('SIGKILL');
      // What the crash left: issued.json loads (a copy: loading clears temp files, which the restart must do), and covers every voucher a client was told of.
      const copy = path.join(dir as string, `issued-${marksTaken++}.json`);
      await copyFile(issuedFile, copy);
      const left = new IssuedState(copy);
      await left.load();
      const mark = left.voucher(`${ids.a}|${ids.b}|credit`);
      expect(mark.seq).toBeGreaterThanOrEqual(Math.max(0, ...replied.map((v) => v.seq)));
      expect(mark.total).toBeGreaterThanOrEqual(Math.max(0, ...replied.map((v) => v.cumulative)));
      running = await startNodeProcess(args);
      // A temp file the kill left beside it is cleared at start.
      await waitFor(async () => (await readdir(path.dirname(issuedFile))).every((name) => name === 'issued.json'), 20_000, output);
      return mark;
    };
    const base = path.basename(issuedFile);
    const marks = [
      await killWhen(path.dirname(issuedFile), (name) => name.startsWith(`${base}.tmp-`), 5), // writing the temp file
      await killWhen(path.dirname(issuedFile), (name) => name === base, 5), // renamed into place, not yet in the feed
      await killWhen(feedDir, (name) => name.endsWith('.seg'), 5), // in the feed, not yet answered
    ];
    // After each restart it goes on above everything it had signed before the kill, a voucher never sent included.
    const last = marks.at(-1)!;
    await waitFor(() => replied.filter((v) => v.seq > last.seq).length >= 5, 30_000, output);
    paying = false;
    await Promise.all(clients);
    for (const mark of marks) {
      const after = replied.filter((v) => v.seq > mark.seq);
      expect(after.length).toBeGreaterThan(0);
      expect(Math.min(...after.map((v) => v.cumulative)), `after the kill at voucher ${mark.seq}`).toBeGreaterThan(mark.total);
    }

    // Both ends hold the same history; the payee's copy of the payer's feed has no fork.
    const digestOfA = async () => {
      const reply = await ask('pay/statement', { peer: ids.b }).catch(() => undefined);
      return (reply?.result as Statement | undefined)?.digest;
    };
    await waitFor(async () => (await digestOfA()) === (await onB<Statement>('pay/statement', { peer: ids.a })).digest, 30_000, output);
    const inFeed: Voucher[] = [];
    for await (const entry of b.mesh!.store.read(ids.a)) {
      const read = b.mesh!.readEntry(entry);
      if (read?.type === VOUCHER_ENTRY_TYPE) inFeed.push(read.body as Voucher);
    }
    for (const [i, v] of inFeed.entries()) {
      if (i === 0) continue;
      const before = inFeed[i - 1] as Voucher;
      expect(v.seq, `voucher ${v.seq} after ${before.seq}`).toBeGreaterThan(before.seq);
      expect(v.cumulative, `voucher ${v.seq} after ${before.seq}`).toBeGreaterThan(before.cumulative);
    }
    // Every voucher a client was told of reached the payee.
    const sigs = new Set(inFeed.map((v) => v.sig));
    expect(replied.filter((v) => !sigs.has(v.sig))).toEqual([]);
    expect(b.counters.get('payments.forks')).toBe(0);
    expect(b.counters.get('feeds.fork')).toBe(0);
    // Owed: at least what the clients were told, at most what they asked (a voucher signed but cut off by a kill is in the next ones).
    const highest = inFeed.at(-1)!;
    expect(highest.cumulative).toBeGreaterThanOrEqual(paidTold);
    expect(highest.cumulative).toBeLessThanOrEqual(paidAsked);
    const owed = (await onB<BalanceRow[]>('pay/balance', { peer: ids.a }))[0];
    expect(owed).toMatchObject({ owedToUs: highest.cumulative, forked: false });
    const weOwe = ((await ask('pay/balance', { peer: ids.b })).result as BalanceRow[])[0];
    expect(weOwe).toMatchObject({ weOwe: highest.cumulative });

    // Stopped cleanly, issued.json holds exactly the last voucher.
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = undefined;
    const final = new IssuedState(issuedFile);
    await final.load();
    expect(final.voucher(`${ids.a}|${ids.b}|credit`)).toEqual({ seq: highest.seq, total: highest.cumulative });
  }, 180_000);
});
