/**
 * Issue 10, finding 16: an owner revokes one of its nodes at run time. The
 * signed revocation spreads through the mesh as a feed entry, reaches a node
 * that was cut off when it was made (caught up after the partition), is kept
 * across restarts, and from then on the revoked node's links, entries and
 * certificate are refused and counted.
 */
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadOrCreateKeyFile } from '../../../runtime/identity/identity.js';
import { publishRevocation } from '../../../runtime/mesh/create-mesh.js';
import { signRevocation } from '../../../runtime/mesh/revocation.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('revoking a node at run time', () => {
  const { dir, nodes, status } = meshTestBed('revocation');

  it('spreads through the mesh, survives a partition and a restart, and refuses the revoked node from then on', async () => {
    const dirs = ['a1', 'b', 'c', 'a2'].map((n) => path.join(dir(), n));
    const [ownerA, ownerB, ownerC] = await Promise.all(dirs.slice(0, 3).map(ownerKeyOf)) as [string, string, string];
    const owners = [ownerA, ownerB, ownerC];
    const ownerKeyFileA = path.join(dirs[0] as string, 'owner.json');
    const start = async (name: string, d: string, mesh: Parameters<typeof startMeshNode>[0]['mesh'] = {}, port?: number): Promise<TestMeshNode> => {
      const node = await startMeshNode({ name, dir: d, trustedOwners: owners, mesh, ...(port ? { port } : {}) });
      nodes.push(node);
      return node;
    };
    // a1 and a2 are both owner A's boards (one owner key); a1 - b - c - a2.
    const a1 = await start('a1', dirs[0] as string);
    const b = await start('b', dirs[1] as string, { neighbours: [{ url: a1.broker.url, nodeId: a1.node.nodeId }] });
    const cSettings = { neighbours: [{ url: b.broker.url, nodeId: b.node.nodeId }] };
    let c = await start('c', dirs[2] as string, cSettings);
    const a2 = await start('a2', dirs[3] as string, { owner: { keyFile: ownerKeyFileA }, neighbours: [{ url: c.broker.url, nodeId: c.node.nodeId }] });
    await a2.mesh.append('reading', { from: 'a2', n: 1 });
    await waitFor(() => c.mesh.store.head(a2.node.nodeId).seq === 1 && b.mesh.store.head(a2.node.nodeId).seq === 1, 15_000, status);

    // c is cut off (stopped) when owner A revokes a2 on a1.
    const cPort = c.broker.port;
    await nodes.splice(nodes.indexOf(c), 1)[0]?.stop();
    const ownerKey = (await loadOrCreateKeyFile(ownerKeyFileA)).identity;
    const result = await publishRevocation(a1.mesh, signRevocation(ownerKey, a2.node.publicKey, Date.now()), a1.counters, pino({ level: 'silent' }));
    expect(result).toEqual({ nodeId: a2.node.nodeId, applied: true });
    await waitFor(() => b.counters.get('mesh.revocations_applied') === 1, 15_000, status);
    expect(b.mesh.directory.get(a2.node.nodeId)).toBeUndefined();

    // c comes back on the same port: it catches up on the revocation, and refuses a2 from then on.
    c = await start('c', dirs[2] as string, cSettings, cPort);
    await waitFor(() => c.counters.get('mesh.revocations_applied') === 1, 15_000, status);
    expect(c.mesh.directory.get(a2.node.nodeId)).toBeUndefined();
    await a2.mesh.append('reading', { from: 'a2', n: 2 });
    await waitFor(() => c.counters.get('mesh.rejected.link_untrusted') + c.counters.get('mesh.rejected.unknown_peer') > 0, 15_000, status);
    expect(c.mesh.store.head(a2.node.nodeId).seq).toBe(1);

    // A revocation by another owner (b's) of a node it did not certify is refused and counted.
    const ownerKeyB = (await loadOrCreateKeyFile(path.join(dirs[1] as string, 'owner.json'))).identity;
    await expect(publishRevocation(b.mesh, signRevocation(ownerKeyB, a1.node.publicKey, Date.now()), b.counters, pino({ level: 'silent' }))).rejects.toThrow(/other than the one that certified it/);
    expect(b.counters.get('mesh.rejected.revocation_untrusted')).toBe(1);
    expect(b.mesh.directory.get(a1.node.nodeId)).toBeDefined();

    // Kept across a restart: refused before any link is up.
    await nodes.splice(nodes.indexOf(c), 1)[0]?.stop();
    c = await start('c', dirs[2] as string, {}, cPort);
    expect(c.mesh.directory.get(a2.node.nodeId)).toBeUndefined();
    expect(c.mesh.directory.get(a1.node.nodeId)).toBeDefined();
  });
});
