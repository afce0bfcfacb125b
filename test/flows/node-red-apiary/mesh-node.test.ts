/**
 * apiary mesh against two real Apiary nodes in one mesh: the palette talks
 * to node A, and receives the decisions node B put in its signed feed (which
 * A holds by replication), each once, with origin, sequence and the audit's
 * verdict. The node publishes no mesh entries on MQTT; the palette reads
 * them through A's `decisions/audit` command.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeAPI } from '../../../flows/node-red-apiary/src/red.js';
import { ownerKeyOf } from '../../support/mesh-node.js';
import { loadPalette, collect, nodeOf, startApiaryNode, testHelper, waitFor, type RunningNode } from './support.js';

describe('apiary mesh', () => {
  const helper = testHelper();
  let palette: (RED: NodeAPI) => void;
  let dir: string;
  let a: RunningNode;
  let b: RunningNode;

  beforeAll(async () => {
    palette = loadPalette();
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-red-mesh-'));
    const [dirA, dirB] = [path.join(dir, 'a'), path.join(dir, 'b')];
    const owners = await Promise.all([dirA, dirB].map(ownerKeyOf));
    const trust = { owners: owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) };
    b = await startApiaryNode({ mesh: { trust, commitInterval: '20ms', antiEntropyInterval: '1s' } }, dirB);
    a = await startApiaryNode({ mesh: { trust, commitInterval: '20ms', antiEntropyInterval: '1s', neighbours: [{ url: `mqtt://127.0.0.1:${b.node.brokerPort}`, nodeId: b.node.nodeId }] } }, dirA);
    await helper.startServer();
  });
  afterAll(async () => {
    await helper.unload();
    await helper.stopServer();
    await a?.stop();
    await b?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends each decision of another node once, with origin, seq, type and the audit\'s verdict; not its own without "includeOwn"', async () => {
    await helper.load(palette, [
      { id: 'srv', type: 'apiary-node', host: '127.0.0.1', port: String(a.node.brokerPort), prefix: 'apiary', nodeId: '' },
      { id: 'm', type: 'apiary-mesh', server: 'srv', interval: '0.2', limit: '50', includeOwn: false, history: true, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => out.length >= 1, 'a decision of node B through node A', 30_000);
    const entry = out[0]!;
    expect(entry.payload).toMatchObject({ origin: b.node.nodeId, type: 'decision', rule: 'warm', state: 'raised', verified: true, verdict: 'no-inference', seq: expect.any(Number) as number });
    expect(entry.apiary).toMatchObject({ origin: b.node.nodeId, via: a.node.nodeId });
    expect(out.every((m) => (m.payload as { origin: string }).origin !== a.node.nodeId)).toBe(true);
    // Each (origin, seq) once, however many reads: wait for three more reads (commands node A handled).
    const handled = async () => ((await a.node.status()).counters as Record<string, number>)['commands.handled'] ?? 0;
    const before = await handled();
    await waitFor(async () => (await handled()) >= before + 3, 'three more reads of the feeds');
    const keys = out.map((m) => { const p = m.payload as { origin: string; seq: number }; return `${p.origin}/${p.seq}`; });
    expect(new Set(keys).size).toBe(keys.length);
  });
});
