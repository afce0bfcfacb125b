/**
 * Peer liveness in status: a retained `offline` that someone else published
 * under a linked peer's state topic does not make the node report that live
 * peer as offline; a real goodbye still shows.
 */
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../../runtime/mesh/peer-table.js';
import { meshTestBed, startLinkedPair, waitFor } from '../../support/mesh-node.js';

describe('peer liveness', () => {
  const { dir: testDir, nodes, status } = meshTestBed('mesh-liveness');

  it('a forged retained offline does not hide a linked, live peer', async () => {
    const { a, b } = await startLinkedPair(testDir(), nodes);
    const peerB = () => (a.mesh.status().peers as PeerStatus[]).find((p) => p.nodeId === b.node.nodeId);
    await waitFor(() => peerB()?.link === 'up' && b.mesh.store.have()[a.node.nodeId] === undefined, 10_000, status);
    await a.mesh.append('reading', { i: 1 });
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 1, 10_000, status);

    // A local client (anonymous from loopback) tries to plant a retained offline for b on a's
    // broker: the broker refuses it (no client writes another node's namespace) and counts it.
    const forger = await connectAsync(`mqtt://127.0.0.1:${a.broker.port}`, { clientId: 'forger' });
    try {
      await forger.publishAsync(`apiary/${b.node.nodeId}/state`, 'offline', { qos: 1, retain: true });
      const seen = new Promise<string>((resolve) => forger.once('message', (_topic, payload) => resolve(payload.toString())));
      await forger.subscribeAsync(`apiary/${b.node.nodeId}/state`, { qos: 1 });
      expect(await seen).toBe('online');
      expect(a.counters.get('broker.rejected.publish-foreign-namespace')).toBe(1);
    } finally {
      await forger.endAsync();
    }
    expect(peerB()).toMatchObject({ link: 'up', announced: 'online' });
    // Had it got in by another path (here published inside a's process, past the broker's rules),
    // status still believes the live link.
    await a.broker.publish(`apiary/${b.node.nodeId}/state`, 'offline', { qos: 1, retain: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(peerB()).toMatchObject({ link: 'up', announced: 'online' });
    expect(peerB()).toMatchObject({ link: 'up', announced: 'online' });
    // And b keeps working with a.
    await a.mesh.append('reading', { i: 2 });
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 2, 10_000, status);
    expect(peerB()?.announced).toBe('online');
  });
});
