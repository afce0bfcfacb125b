/**
 * Issue 10, finding 3 (the mesh's part): a single trusted peer must not grow
 * a node's disk or heap without bound. One test per bound: a hostile but
 * trusted node `x` pushes past it and is refused (counted), while an honest
 * node `h` of another owner keeps working with the victim `v`.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../../runtime/config/schema.js';
import { loadOrCreateKeyFile } from '../../../runtime/identity/identity.js';
import { encodeEntry, signEntry } from '../../../runtime/mesh/feed-entry.js';
import { connectAsync } from 'mqtt';
import { makeLinkToken } from '../../../runtime/mesh/link-token.js';
import type { MeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { sendOverLink } from '../../support/hostile-link.js';
import { mintCertifiedNode, mintIdentity } from '../../support/minted-nodes.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

/** Keys of a node's shared document, as the budget counts them: top-level names and their keys (the signed ops, shared-state-rules.ts). */
function documentKeys(node: TestMeshNode): number {
  return Object.values(node.mesh.state.toJSON()).reduce<number>((n, map) => n + 1 + Object.keys(map as object).length, 0);
}

describe('mesh budgets against one trusted peer', () => {
  const { dir, nodes, status } = meshTestBed('budgets');

  /** v (the victim, with `vMesh` settings), x (hostile) and h (honest) of three owners, x and h linked with v both ways. */
  async function startThree(vMesh: ConfigInput['mesh'] = {}, vStorage?: ConfigInput['storage']): Promise<{ v: TestMeshNode; x: TestMeshNode; h: TestMeshNode }> {
    const dirs = ['v', 'x', 'h'].map((n) => path.join(dir(), n)) as [string, string, string];
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const v = await startMeshNode({ name: 'v', dir: dirs[0], trustedOwners: owners, mesh: vMesh, ...(vStorage ? { storage: vStorage } : {}) });
    nodes.push(v);
    const neighbours = [{ url: v.broker.url, nodeId: v.node.nodeId }];
    const x = await startMeshNode({ name: 'x', dir: dirs[1], trustedOwners: owners, mesh: { neighbours } });
    const h = await startMeshNode({ name: 'h', dir: dirs[2], trustedOwners: owners, mesh: { neighbours } });
    nodes.push(x, h);
    await waitFor(() => v.mesh.status().peers instanceof Array && (v.mesh.status().peers as { link: string }[]).filter((p) => p.link === 'up').length === 2, 10_000, status);
    return { v, x, h };
  }

  it('originsPerOwner: an owner minting node ids gets at most 64 feeds kept; other owners are unaffected', async () => {
    const { v, x, h } = await startThree();
    await x.mesh.append('reading', { mine: 1 });
    await waitFor(() => v.mesh.store.head(x.node.nodeId).seq === 1, 10_000, status);
    // x's owner mints 80 more node ids, and x sends one entry of each, with their certificates.
    const xOwner = (await loadOrCreateKeyFile(path.join(dir(), 'x', 'owner.json'))).identity;
    const minted = Array.from({ length: 80 }, (_, i) => mintCertifiedNode(xOwner, `sybil-${i}`));
    const lines = minted.map(({ identity }, i) => encodeEntry(signEntry(identity, { seq: 1, prev: null, hlc: { l: Date.now(), c: 0 }, type: 'reading', body: { i } })));
    await sendOverLink(x, v, { t: 'entries', hops: 0, reply: false, certs: minted.map((m) => m.cert), starts: {} }, lines);
    await waitFor(() => v.counters.get('feeds.refused.origins_per_owner') >= 17, 10_000, status);
    const ofX = v.mesh.store.stats().filter((f) => v.mesh.directory.get(f.origin)?.owner === xOwner.publicKey);
    expect(ofX.length).toBe(64);
    // The honest owner's node still gets through, and so does what x writes later on its kept feed.
    for (let i = 0; i < 5; i++) await h.mesh.append('reading', { i });
    await waitFor(() => v.mesh.store.head(h.node.nodeId).seq === 5, 10_000, status);
    expect(v.mesh.store.stats().length).toBeLessThanOrEqual(64 + 2); // x's owner's 64, h, v
  });

  it('dial-backs: an owner linking in as many node ids gets at most originsPerOwner links back', async () => {
    const { v, x } = await startThree({ budgets: { originsPerOwner: 4 } });
    const xOwner = (await loadOrCreateKeyFile(path.join(dir(), 'x', 'owner.json'))).identity;
    for (let i = 0; i < 8; i++) {
      const { identity, cert } = mintCertifiedNode(xOwner, `sybil-${i}`);
      const mesh = { node: identity, certificate: cert, box: { publicKey: cert.box } } as unknown as MeshIdentity;
      const client = await connectAsync(`mqtt://127.0.0.1:${v.broker.port}`, {
        protocolVersion: 4, clientId: `apiary-${identity.nodeId}`, username: identity.nodeId, password: makeLinkToken(mesh, v.node.nodeId, Date.now(), `tcp:127.0.0.1:${v.broker.port}`).password, reconnectPeriod: 0,
      });
      // Each says where its broker listens, so that v would link back (here: x's broker, for all of them).
      await client.publishAsync(meshTopic('apiary', identity.nodeId, v.node.nodeId), encodeMeshMessage({ t: 'hello', cert, have: {}, sv: 'AA==', port: x.broker.port }), { qos: 1 });
      await client.endAsync();
    }
    await waitFor(() => v.counters.get('mesh.received.hello') >= 2 + 8, 10_000, status);
    const linksOfXOwner = (v.mesh.status().peers as { nodeId: string; link: string }[])
      .filter((p) => p.link !== 'none' && v.mesh.directory.get(p.nodeId)?.owner === xOwner.publicKey);
    expect(linksOfXOwner).toHaveLength(4); // x and three of its minted ids
    expect(v.counters.get('mesh.rejected.dial_back_budget')).toBe(5);
  });

  it('maxFeedBytes: one origin flooding takes the eviction, not the quiet origins or our own feed', async () => {
    const { v, x, h } = await startThree({ budgets: { maxFeedBytes: '1MiB' } }, { segmentBytes: '64KiB' });
    for (let i = 0; i < 20; i++) await v.mesh.append('reading', { i, pad: 'v'.repeat(8 * 1024) });
    for (let i = 0; i < 20; i++) await h.mesh.append('reading', { i, pad: 'h'.repeat(8 * 1024) });
    await waitFor(() => v.mesh.store.head(h.node.nodeId).seq === 20, 10_000, status);
    // x writes about 2 MiB, twice the budget for every other origin together.
    for (let i = 0; i < 40; i++) await x.mesh.append('reading', { i, pad: 'x'.repeat(48 * 1024) });
    await waitFor(() => v.mesh.store.head(x.node.nodeId).seq === 40, 20_000, status);
    const feeds = new Map(v.mesh.store.stats().map((f) => [f.origin, f]));
    const others = [...feeds.values()].filter((f) => f.origin !== v.node.nodeId);
    expect(others.reduce((sum, f) => sum + f.bytes, 0)).toBeLessThanOrEqual(1024 * 1024);
    expect(v.counters.get('feeds.evicted_for_budget')).toBeGreaterThan(0);
    // x lost its oldest entries; h and v lost nothing.
    expect(feeds.get(x.node.nodeId)?.firstSeq).toBeGreaterThan(1);
    expect(feeds.get(h.node.nodeId)).toMatchObject({ firstSeq: 1, seq: 20 });
    expect(feeds.get(v.node.nodeId)).toMatchObject({ firstSeq: 1, seq: 20 });
    // And h keeps working.
    await h.mesh.append('reading', { after: true });
    await waitFor(() => v.mesh.store.head(h.node.nodeId).seq === 21, 10_000, status);
  });

  it('sharedKeys: keys past the budget are refused, counted; an honest edit of an existing key still arrives', async () => {
    const { v, x, h } = await startThree({ budgets: { sharedKeys: 64 }, sharedState: { otherMaps: 'any-trusted' } });
    await h.mesh.setShared('thresholds', 'swarming', 0.5);
    await waitFor(() => v.mesh.shared.get('thresholds', 'swarming') === 0.5, 10_000, status);
    for (let i = 0; i < 200; i++) await x.mesh.setShared('notes', `k${i}`, i);
    await waitFor(() => v.counters.get('mesh.rejected.state_keys') > 0 && documentKeys(x) > 200, 10_000, status);
    // An anti-entropy round offers v everything it lacks at once: refused again.
    await waitFor(() => v.counters.get('mesh.received.have') > 0, 10_000, status);
    expect(documentKeys(v)).toBeLessThanOrEqual(64);
    await h.mesh.setShared('thresholds', 'swarming', 0.75);
    await waitFor(() => v.mesh.shared.get('thresholds', 'swarming') === 0.75, 10_000, status);
    // x is not cut off: its feed still arrives.
    await x.mesh.append('reading', { still: 'linked' });
    await waitFor(() => v.mesh.store.head(x.node.nodeId).seq === 1, 10_000, status);
  });

  it('sharedBytes: updates that would grow the document past the budget are refused, counted', async () => {
    const { v, x, h } = await startThree({ budgets: { sharedBytes: '32KiB' }, sharedState: { otherMaps: 'any-trusted' } });
    for (let i = 0; i < 10; i++) await x.mesh.setShared('notes', `big${i}`, 'b'.repeat(8 * 1024));
    await waitFor(() => v.counters.get('mesh.rejected.state_bytes') > 0, 10_000, status);
    expect(v.mesh.state.canonical().length).toBeLessThanOrEqual(32 * 1024);
    await h.mesh.setShared('thresholds', 'swarming', 0.75);
    await waitFor(() => v.mesh.shared.get('thresholds', 'swarming') === 0.75, 10_000, status);
  });

  it('have-vectors: origins the peer makes up are not kept; a bounded few are asked for, then refused and counted', async () => {
    const { v, x, h } = await startThree();
    const madeUp = Object.fromEntries(Array.from({ length: 5000 }, () => [mintIdentity().nodeId, 1_000_000]));
    for (let round = 0; round < 3; round++) await sendOverLink(x, v, { t: 'have', have: madeUp });
    await waitFor(() => v.counters.get('mesh.rejected.have_unknown_origin') >= 3 * (5000 - 1024), 10_000, status);
    const viewOfX = (v.mesh.status().peers as { nodeId: string; weLack: Record<string, number> }[]).find((p) => p.nodeId === x.node.nodeId);
    expect(Object.keys(viewOfX?.weLack ?? {})).toHaveLength(0);
    // Probes (wants of unknown origins) are few: at most 64 per want, each origin once per interval.
    expect(v.counters.get('mesh.probes_sent')).toBeLessThanOrEqual(3 * 64);
    await h.mesh.append('reading', { i: 1 });
    await waitFor(() => v.mesh.store.head(h.node.nodeId).seq === 1, 10_000, status);
  });
});
