/**
 * Issue 10, finding 7: catch-up of more origins than one message may carry
 * certificates for (256), and more bytes than the broker's packet limit. A
 * batch that broke either limit was refused by the peer and re-sent, the
 * same, forever. Batches are now cut to both limits, and a certificate counts
 * as delivered only once the peer shows it holds that origin.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateKeyFile } from '../../../runtime/identity/identity.js';
import { signEntry } from '../../../runtime/mesh/feed-entry.js';
import { mintCertifiedNode } from '../../support/minted-nodes.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor } from '../../support/mesh-node.js';

describe('catch-up past 256 origins', () => {
  const { dir, nodes, status } = meshTestBed('many-origins');

  it('converges on 300 origins of five owners, in batches within the certificate and packet limits', async () => {
    // Five owners of 60 nodes each: within the default originsPerOwner (64), so only the batch limits are in play.
    const owners = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await loadOrCreateKeyFile(path.join(dir(), `owner-${i}.json`))).identity));
    const [dirA, dirB] = ['a', 'b'].map((n) => path.join(dir(), n)) as [string, string];
    const trusted = [...owners.map((o) => o.publicKey), await ownerKeyOf(dirA), await ownerKeyOf(dirB)];
    const a = await startMeshNode({ name: 'a', dir: dirA, trustedOwners: trusted });
    nodes.push(a);
    // a holds two entries of each of 300 origins (as if relayed to it long ago): about 470 KiB with certificates.
    const origins: string[] = [];
    for (let i = 0; i < 300; i++) {
      const { identity, cert } = mintCertifiedNode(owners[i % owners.length] as (typeof owners)[number], `minted-${i}`);
      a.mesh.directory.learn(cert);
      const first = signEntry(identity, { seq: 1, prev: null, hlc: { l: Date.now(), c: 0 }, type: 'reading', body: { i, pad: 'p'.repeat(500) } });
      expect(await a.mesh.store.apply(first)).toBe('applied');
      expect(await a.mesh.store.apply(signEntry(identity, { seq: 2, prev: a.mesh.store.head(identity.nodeId).hash, hlc: { l: Date.now(), c: 1 }, type: 'reading', body: { i } }))).toBe('applied');
      origins.push(identity.nodeId);
    }
    // b meets a knowing none of them.
    const b = await startMeshNode({ name: 'b', dir: dirB, trustedOwners: trusted, mesh: { neighbours: [{ url: a.broker.url, nodeId: a.node.nodeId }] } });
    nodes.push(b);
    await waitFor(() => origins.every((o) => b.mesh.store.head(o).seq === 2), 25_000,
      () => `${origins.filter((o) => b.mesh.store.head(o).seq === 2).length} of 300 origins: ${status()}`);
    expect(b.counters.get('feeds.applied')).toBe(600);
    // Nothing was refused on the way: every message fit the peer's limits.
    expect(b.counters.get('mesh.rejected.message_malformed')).toBe(0);
    expect(b.counters.get('broker.rejected.oversized')).toBe(0);
    expect(b.counters.get('feeds.rejected.unknown_node')).toBe(0);
    expect(b.mesh.members().length).toBeGreaterThanOrEqual(302);
  });
});
