/**
 * Issue 10, finding 11: a small `want` cost up to a batch (256 KiB) of disk
 * reads and a signature check per entry read, even from a peer we have no
 * link to. Now: nothing is read for a peer we cannot answer, wants are
 * rate-limited per peer (token bucket), and entries read back from our own
 * disk are not verified again. Measured by counters, not by time.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { entrySignatureChecks } from '../../../runtime/mesh/feed-entry.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor } from '../../support/mesh-node.js';
import { sendOverLink } from '../../support/hostile-link.js';

describe('what a want costs', () => {
  const { dir, nodes, status } = meshTestBed('want-cost');

  const dirsAndOwners = async () => {
    const dirs = ['v', 'x', 'h'].map((n) => path.join(dir(), n)) as [string, string, string];
    return { dirs, owners: await Promise.all(dirs.map(ownerKeyOf)) };
  };

  it('builds nothing for a peer it has no link to', async () => {
    const { dirs, owners } = await dirsAndOwners();
    const v = await startMeshNode({ name: 'v', dir: dirs[0], trustedOwners: owners, mesh: { dialBack: false } });
    nodes.push(v);
    for (let i = 0; i < 50; i++) await v.mesh.append('reading', { i, pad: 'p'.repeat(1000) });
    // x links to v; v does not link back, so it could not send an answer.
    const x = await startMeshNode({ name: 'x', dir: dirs[1], trustedOwners: owners, mesh: { neighbours: [{ url: v.broker.url, nodeId: v.node.nodeId }] } });
    nodes.push(x);
    await waitFor(() => v.counters.get('mesh.received.hello') === 1, 10_000, status);
    const readsBefore = v.counters.get('feeds.disk_entries_read');
    for (let id = 1; id <= 20; id++) await sendOverLink(x, v, { t: 'want', want: { [v.node.nodeId]: 1 }, id });
    await waitFor(() => v.counters.get('mesh.rejected.want_no_link') === 20, 10_000, status);
    expect(v.counters.get('feeds.disk_entries_read')).toBe(readsBefore);
    expect(v.counters.get('mesh.catchup_entries_sent')).toBe(0);
  });

  it('answers a flood of wants at the budgeted rate, counts the rest, and still serves an honest peer without re-verifying its own disk', async () => {
    const { dirs, owners } = await dirsAndOwners();
    const v = await startMeshNode({ name: 'v', dir: dirs[0], trustedOwners: owners, mesh: { budgets: { wantsPerSecond: 0.1, wantBurst: 5 } } });
    nodes.push(v);
    for (let i = 0; i < 50; i++) await v.mesh.append('reading', { i, pad: 'p'.repeat(1000) });
    const neighbours = [{ url: v.broker.url, nodeId: v.node.nodeId }];
    const x = await startMeshNode({ name: 'x', dir: dirs[1], trustedOwners: owners, mesh: { neighbours } });
    nodes.push(x);
    await waitFor(() => x.mesh.store.head(v.node.nodeId).seq === 50, 10_000, status);
    const wantsBefore = v.counters.get('mesh.received.want');
    // x asks for the whole feed again, 100 times, as fast as its link takes it.
    for (let id = 1000; id < 1100; id++) await sendOverLink(x, v, { t: 'want', want: { [v.node.nodeId]: 1 }, id });
    await waitFor(() => v.counters.get('mesh.received.want') === wantsBefore + 100, 10_000, status);
    expect(v.counters.get('mesh.rejected.want_rate')).toBeGreaterThanOrEqual(100 - 5);
    // At most a burst of answers, each at most the 50 entries: reads bounded by the bucket, not by the flood.
    expect(v.counters.get('feeds.disk_entries_read')).toBeLessThanOrEqual((5 + 1) * 50);

    // An honest peer has its own bucket, and v does not check again the signatures of what it reads from its disk.
    const checksBefore = entrySignatureChecks();
    const h = await startMeshNode({ name: 'h', dir: dirs[2], trustedOwners: owners, mesh: { neighbours } });
    nodes.push(h);
    await waitFor(() => h.mesh.store.head(v.node.nodeId).seq === 50, 10_000, status);
    expect(h.counters.get('feeds.applied')).toBe(50);
    // One check per entry h received; none for v's reads.
    expect(entrySignatureChecks() - checksBefore).toBe(50);
  });
});
