/**
 * Issue 10, finding 13: a sealed body is bound to the entry that carries it
 * (origin and seq in the box's AAD). A trusted node that copies another
 * node's sealed body into an entry of its own feed gets it refused and
 * counted by the recipient, not read as its own words; honest private
 * entries, and old (v1) boxes in their own origin's feed, still open.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { sealForRecipients } from '../../../runtime/mesh/private-box.js';
import { PRIVATE_ENTRY_TYPE } from '../../../runtime/mesh/mesh.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('sealed boxes bound to their entry', () => {
  const bed = meshTestBed('private-binding');

  async function threeNodes(): Promise<[TestMeshNode, TestMeshNode, TestMeshNode]> {
    const dirs = ['sender', 'copier', 'recipient'].map((n) => path.join(bed.dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const recipient = await startMeshNode({ name: 'recipient', dir: dirs[2] as string, trustedOwners: owners });
    bed.nodes.push(recipient);
    const link = { neighbours: [{ url: recipient.broker.url, nodeId: recipient.node.nodeId }] };
    const sender = await startMeshNode({ name: 'sender', dir: dirs[0] as string, trustedOwners: owners, mesh: link });
    const copier = await startMeshNode({ name: 'copier', dir: dirs[1] as string, trustedOwners: owners, mesh: link });
    bed.nodes.push(sender, copier);
    // The sender seals for the recipient with the key of its certificate.
    sender.mesh.directory.learn(recipient.identity.certificate);
    return [sender, copier, recipient];
  }

  const bodyOf = (entry: FeedEntry): unknown => JSON.parse(entry.body);

  it('refuses a sealed body re-published in another node\'s feed, and still opens the honest one', async () => {
    const [sender, copier, recipient] = await threeNodes();
    const opened: { origin: string; body: unknown }[] = [];
    recipient.mesh.on('private', (m) => opened.push(m));

    const honest = await sender.mesh.appendPrivate('reading', { note: 'queen seen' }, [recipient.node.nodeId]);
    await waitFor(() => opened.length === 1, 10_000, bed.status);
    expect(opened[0]).toMatchObject({ origin: sender.node.nodeId, body: { note: 'queen seen' } });

    // The copier (not a recipient, so it cannot read it) re-publishes the same sealed body as its own entry.
    const copy = await copier.mesh.append(PRIVATE_ENTRY_TYPE, bodyOf(honest));
    await waitFor(() => recipient.mesh.store.head(copier.node.nodeId).seq === copy.seq, 10_000, bed.status);
    await waitFor(() => recipient.counters.get('mesh.rejected.private_unbound') === 1, 10_000, bed.status);
    expect(opened).toHaveLength(1);
    // Stored and relayed like any entry: nothing is lost, it just is not read as the copier's words.
    expect(recipient.counters.get('feeds.applied')).toBe(2);
  });

  it('opens an old (v1, unbound) box only in the feed of a node it was sealed by or for', async () => {
    const [sender, copier, recipient] = await threeNodes();
    const opened: { origin: string; body: unknown }[] = [];
    recipient.mesh.on('private', (m) => opened.push(m));
    // A box as nodes before the binding sealed it: no origin or seq in its AAD.
    const legacy = sealForRecipients(Buffer.from(JSON.stringify({ type: 'reading', body: { note: 'old' } })),
      { ...sender.identity.box, nodeId: sender.node.nodeId }, [{ nodeId: recipient.node.nodeId, box: recipient.identity.certificate.box }], 'apiary-feed-entry');
    expect(legacy.v).toBe(1);
    await sender.mesh.append(PRIVATE_ENTRY_TYPE, legacy);
    await waitFor(() => opened.length === 1, 10_000, bed.status);
    expect(recipient.counters.get('mesh.private_legacy_opened')).toBe(1);

    await copier.mesh.append(PRIVATE_ENTRY_TYPE, legacy);
    await waitFor(() => recipient.counters.get('mesh.rejected.private_unbound') === 1, 10_000, bed.status);
    expect(opened).toHaveLength(1);
    expect(opened[0]?.origin).toBe(sender.node.nodeId);
  });
});
