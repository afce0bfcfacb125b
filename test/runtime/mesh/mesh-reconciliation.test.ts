/**
 * Issue 16, point 2: catch-up between two nodes costs in proportion to what
 * differs, not to how many origins they hold. Two real nodes that both hold
 * 600 origins of ten owners are parted, one writes five entries, and the
 * link heals: every byte through the link's proxies is counted, from the
 * heal until the other holds the five. Before range reconciliation a
 * re-link alone sent four full have-vectors (hello and reply, each way).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';
import { loadOrCreateKeyFile } from '../../../runtime/identity/identity.js';
import { encodeEntry, entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { encodeMeshMessage } from '../../../runtime/mesh/mesh-protocol.js';
import { mintCertifiedNode } from '../../support/minted-nodes.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('catch-up in proportion to the difference', () => {
  const { dir, nodes, status } = meshTestBed('reconcile');

  /** Two linked nodes a and b (through counting proxies) that both hold the same two entries of 600 origins of ten owners. */
  async function twoStoresOf600() {
    const owners = await Promise.all(Array.from({ length: 10 }, (_, i) => i).map(async (i) => (await loadOrCreateKeyFile(path.join(dir(), `owner-${i}.json`))).identity));
    const [dirA, dirB] = ['a', 'b'].map((n) => path.join(dir(), n)) as [string, string];
    const trusted = [...owners.map((o) => o.publicKey), await ownerKeyOf(dirA), await ownerKeyOf(dirB)];
    // Anti-entropy far away: only the link-up exchange and the tree may move anything.
    const mesh = { acceptRelayedPlainLinks: true, antiEntropyInterval: '1h', commitInterval: '20ms', dialBack: false };
    const a = await startMeshNode({ name: 'a', dir: dirA, trustedOwners: trusted, mesh });
    const b = await startMeshNode({ name: 'b', dir: dirB, trustedOwners: trusted, mesh });
    nodes.push(a, b);
    // Both hold the same two entries of each of 600 origins, as if relayed to them long ago.
    const minted: FeedEntry[] = [];
    for (let i = 0; i < 600; i++) {
      const { identity, cert } = mintCertifiedNode(owners[i % owners.length] as (typeof owners)[number], `minted-${i}`);
      for (const n of [a, b]) n.mesh.directory.learn(cert);
      const first = signEntry(identity, { seq: 1, prev: null, hlc: { l: Date.now(), c: 0 }, type: 'reading', body: { i } });
      const second = signEntry(identity, { seq: 2, prev: entryHash(first), hlc: { l: Date.now(), c: 1 }, type: 'reading', body: { i } });
      minted.push(first, second);
    }
    for (const n of [a, b]) for (const entry of minted) expect(await n.mesh.store.apply(entry)).toBe('applied');
    const fullHave = encodeMeshMessage({ t: 'have', have: a.mesh.store.have() }).length;

    const proxies: TcpProxy[] = [];
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const proxy = new TcpProxy(to.broker.port);
      await proxy.start();
      proxies.push(proxy);
      from.mesh.link(proxy.url, to.node.nodeId);
    }
    const linked = () => waitFor(() => [a, b].every((n: TestMeshNode) => n.mesh.linkedPeers().length === 1), 30_000, status);
    return { a, b, proxies, linked, fullHave, dirB, trusted, mesh };
  }

  it('a small difference between two stores of 600 origins costs a few KiB, not their have-vectors', async () => {
    const { a, b, proxies, linked, fullHave } = await twoStoresOf600();
    const aHead = () => a.mesh.store.head(a.node.nodeId).seq;
    await linked();
    await a.mesh.append('reading', { warm: true });
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === aHead(), 20_000, status);

    for (const proxy of proxies) proxy.cut();
    await waitFor(() => [a, b].every((n) => n.mesh.linkedPeers().length === 0), 20_000, status);
    const missing: number[] = [];
    for (let i = 0; i < 5; i++) {
      missing.push(encodeEntry(await a.mesh.append('reading', { i, pad: 'p'.repeat(200) })).length);
    }
    const wire = () => proxies.reduce((sum, p) => sum + p.bytes.up + p.bytes.down, 0);
    const before = wire();
    const at = Object.fromEntries(['have', 'sum', 'want', 'hello'].map((t) => [t, [a, b].reduce((sum, n) => sum + n.counters.get(`mesh.sent_bytes.${t}`), 0)]));
    for (const proxy of proxies) proxy.heal();
    await linked();
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === aHead(), 20_000, status);
    const sent = wire() - before;
    const missingBytes = missing.reduce((x, y) => x + y, 0);
    const sentBytes = (t: string) => [a, b].reduce((sum, n) => sum + n.counters.get(`mesh.sent_bytes.${t}`), 0) - (at[t] ?? 0);
    const saying = sentBytes('have') + sentBytes('sum') + sentBytes('want');
    const why = `${sent} bytes through the proxies, ${saying} of them saying what each holds; ${missingBytes} missing; a full have-vector is ${fullHave}`;
    // Both sides reconcile by ranges: hellos with empty have-vectors, then sums, then the five entries.
    expect(a.counters.get('mesh.received.sum'), why).toBeGreaterThan(0);
    expect(b.counters.get('mesh.received.sum'), why).toBeGreaterThan(0);
    expect(sentBytes('hello'), why).toBeLessThan(fullHave / 2);
    // Saying what each holds cost a fraction of one have-vector (before: four, a hello and its answer each way).
    expect(saying, why).toBeLessThan(fullHave / 2);
    expect(sent, why).toBeLessThan(2 * fullHave);
  }, 90_000);
  it('after a restart too: the restarted node remembers which peers reconcile, and its hello carries no have-vector', async () => {
    const { a, b, proxies, linked, fullHave, dirB, trusted, mesh } = await twoStoresOf600();
    await linked();
    // Both have reconciled once: each remembers the other (mesh/reconciling-peers.json).
    await waitFor(() => a.counters.get('mesh.received.sum') > 0 && b.counters.get('mesh.received.sum') > 0, 20_000, status);
    const port = b.broker.port;
    nodes.splice(nodes.indexOf(b), 1);
    await b.stop();
    for (let i = 0; i < 5; i++) await a.mesh.append('reading', { i, pad: 'p'.repeat(200) });
    const b2 = await startMeshNode({ name: 'b', dir: dirB, trustedOwners: trusted, mesh, port });
    nodes.push(b2);
    const toA = proxies[1]; // b dialled a through the second (twoStoresOf600)
    if (!toA) throw new Error('no proxy to a');
    b2.mesh.link(toA.url, a.node.nodeId);
    await waitFor(() => b2.mesh.store.head(a.node.nodeId).seq === a.mesh.store.head(a.node.nodeId).seq, 30_000, status);
    const why = `b's hello after its restart: ${b2.counters.get('mesh.sent_bytes.hello')} B; its have messages ${b2.counters.get('mesh.sent_bytes.have')} B; a full have-vector is ${fullHave} B`;
    expect(b2.counters.get('mesh.received.sum'), why).toBeGreaterThan(0);
    // Before: the first hello after a restart carried b's whole have-vector (some 10 KB for 600 origins).
    expect(b2.counters.get('mesh.sent_bytes.hello'), why).toBeLessThan(fullHave / 2);
    expect(b2.counters.get('mesh.sent_bytes.have'), why).toBeLessThan(fullHave / 2);
  }, 120_000);
});
