/**
 * Issue 10, finding 5: the shared document has authors. A trusted node of
 * another owner (mallory) sends crafted shared-state updates straight to
 * two nodes of one owner (a, b): rewriting a's member record, setting a
 * map only a's owner may write, deleting a's record, stamping far ahead.
 * Each is refused (or left without effect) and counted on both, and honest
 * edits still converge on every node.
 */
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { Counters } from '../../../runtime/counters.js';
import { encodeMeshMessage, meshTopic } from '../../../runtime/mesh/mesh-protocol.js';
import { SharedState } from '../../../runtime/mesh/shared-state.js';
import { signStateOp, stateOpId } from '../../../runtime/mesh/state-op.js';
import { connectAs, meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

describe('shared state with authors', () => {
  const bed = meshTestBed('shared-authorship');
  const clients: MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  it('refuses edits a trusted node of another owner may not make, everywhere, and honest edits still converge', async () => {
    const dirA = path.join(bed.dir(), 'a');
    const dirM = path.join(bed.dir(), 'mallory');
    const owners = await Promise.all([dirA, dirM].map(ownerKeyOf));
    const sameOwner = { keyFile: path.join(dirA, 'owner.json') };
    const a = await startMeshNode({ name: 'a', dir: dirA, trustedOwners: owners });
    bed.nodes.push(a);
    const b = await startMeshNode({ name: 'b', dir: path.join(bed.dir(), 'b'), trustedOwners: owners, mesh: { owner: sameOwner, neighbours: [{ url: a.broker.url, nodeId: a.node.nodeId }] } });
    const mallory = await startMeshNode({ name: 'mallory', dir: dirM, trustedOwners: owners, mesh: { neighbours: [a, b].map((n) => ({ url: n.broker.url, nodeId: n.node.nodeId })) } });
    bed.nodes.push(b, mallory);
    const honest = [a, b];
    const view = (n: TestMeshNode) => n.mesh.shared.toJSON();
    const memberIds = (n: TestMeshNode) => Object.keys(view(n).members ?? {}).sort();
    const everyone = [a, b, mallory].map((n) => n.node.nodeId).sort();
    await waitFor(() => [a, b, mallory].every((n) => JSON.stringify(memberIds(n)) === JSON.stringify(everyone)), 15_000, bed.status);
    const recordOfA = view(a).members?.[a.node.nodeId];

    // An honest edit by b, a node of a's owner.
    await b.mesh.setShared('thresholds', 'swarming', 0.8);
    await waitFor(() => a.mesh.shared.get('thresholds', 'swarming') === 0.8, 10_000, bed.status);

    // Mallory's own link to each victim's broker, to send what its node would never send.
    const linkTo = async (victim: TestMeshNode) => {
      const client = await connectAs(mallory, victim);
      clients.push(client);
      return client;
    };
    const raw = new Map(await Promise.all(honest.map(async (n) => [n, await linkTo(n)] as const)));
    /** An update made on a copy of the victim's document (so it applies there at once), sent as mallory. */
    const attack = async (edit: (doc: Y.Doc) => void) => {
      for (const victim of honest) {
        const copy = new Y.Doc();
        Y.applyUpdate(copy, victim.mesh.state.diffFor(Y.encodeStateVector(new Y.Doc())) as Uint8Array);
        const known = Y.encodeStateVector(copy);
        copy.transact(() => edit(copy));
        const update = Buffer.from(Y.encodeStateAsUpdate(copy, known)).toString('base64');
        await raw.get(victim)?.publishAsync(meshTopic('apiary', mallory.node.nodeId, victim.node.nodeId), encodeMeshMessage({ t: 'state', update, hops: 0 }), { qos: 1 });
      }
    };
    const counted = (name: string) => waitFor(() => honest.every((n) => n.counters.get(name) >= 1), 10_000, () => `${name}: ${bed.status()}`);
    const signed = (map: string, k: string, value: unknown, l = Date.now()) => {
      const op = signStateOp(mallory.node, { map, k, value, hlc: { l, c: 0 } });
      return [stateOpId(op), JSON.stringify(op)] as const;
    };
    const forgedRecord = { ...(recordOfA as object), box: mallory.identity.certificate.box };

    // 1. Unsigned edits, as any Yjs peer could make them: a's member record and the thresholds.
    await attack((doc) => {
      doc.getMap('members').set(a.node.nodeId, forgedRecord);
      doc.getMap('thresholds').set('swarming', 0.01);
    });
    await counted('mesh.rejected.state_unsigned');
    // 2. A signed op, by mallory, for a's member record.
    await attack((doc) => doc.getMap('ops').set(...signed('members', a.node.nodeId, forgedRecord)));
    await counted('mesh.rejected.state_forged_member');
    // 3. A signed op on a map only nodes of a's owner may write: stored, but without effect.
    await attack((doc) => doc.getMap('ops').set(...signed('thresholds', 'swarming', 0.01, Date.now() + 30_000)));
    await counted('mesh.rejected.state_unauthorised');
    // 4. Deleting a's member record.
    await attack((doc) => {
      const ops = doc.getMap<string>('ops');
      for (const [id, text] of ops.entries()) if ((JSON.parse(text) as { origin: string }).origin === a.node.nodeId) ops.delete(id);
    });
    await counted('mesh.rejected.state_deletes');
    // 5. Mallory's own record, stamped a day ahead (it would win over every later edit).
    await attack((doc) => doc.getMap('ops').set(...signed('members', mallory.node.nodeId, { name: 'from the future' }, Date.now() + 86_400_000)));
    await counted('mesh.rejected.state_future');

    for (const n of honest) {
      expect(view(n).members?.[a.node.nodeId]).toEqual(recordOfA);
      expect(n.mesh.shared.get('thresholds', 'swarming')).toBe(0.8);
      expect(n.mesh.shared.get('members', mallory.node.nodeId)).toMatchObject({ name: 'mallory' });
    }
    // Mallory's node itself may not sign for a, whatever its caller asks.
    await expect(mallory.mesh.setShared('members', a.node.nodeId, forgedRecord)).rejects.toThrow(/may not write members/);

    // Honest edits still converge on every node: the same signed ops everywhere, and a and b read the same document.
    await a.mesh.setShared('thresholds', 'swarming', 0.85);
    await mallory.mesh.setShared('members', mallory.node.nodeId, { name: 'mallory', note: 'renamed' });
    await waitFor(() => b.mesh.shared.get('thresholds', 'swarming') === 0.85
      && honest.every((n) => (n.mesh.shared.get('members', mallory.node.nodeId) as { note?: string } | undefined)?.note === 'renamed')
      && new Set([a, b, mallory].map((n) => n.mesh.state.canonical())).size === 1, 15_000, bed.status);
    expect(a.mesh.shared.canonical()).toBe(b.mesh.shared.canonical());
  });

  it('starts on a data dir with shared state of an older version (unsigned), which it leaves unused', async () => {
    const dir = path.join(bed.dir(), 'old');
    const old = new SharedState({ dir: path.join(dir, 'mesh', 'state'), counters: new Counters(), segmentBytes: 64 * 1024 });
    await old.start();
    await old.set('thresholds', 'swarming', 0.01);
    await old.stop();
    const node = await startMeshNode({ name: 'old', dir, trustedOwners: [await ownerKeyOf(dir)] });
    bed.nodes.push(node);
    expect(node.counters.get('mesh.state_legacy_ignored')).toBe(1);
    expect(node.mesh.shared.get('thresholds', 'swarming')).toBeUndefined();
    expect(node.mesh.shared.get('members', node.node.nodeId)).toMatchObject({ name: 'old' });
    await node.mesh.setShared('thresholds', 'swarming', 0.7);
    expect(node.mesh.shared.get('thresholds', 'swarming')).toBe(0.7);
  });
});
