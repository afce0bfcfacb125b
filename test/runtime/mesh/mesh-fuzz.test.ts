/**
 * Random and mutated mesh messages (fast-check) sent to a real node by a
 * trusted peer over MQTT: every message the decoder refuses is counted
 * (mesh.rejected.message_malformed), none makes a handler fail
 * (mesh.errors), and the node keeps serving honest entries.
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeEntry, signEntry } from '../../../runtime/mesh/feed-entry.js';
import { decodeMeshMessage, encodeMeshMessage, meshTopic, type MeshHeader } from '../../../runtime/mesh/mesh-protocol.js';
import { connectAs, meshTestBed, ownerKeyOf, startMeshNode, waitFor } from '../../support/mesh-node.js';

describe('a node fed random mesh messages', () => {
  const bed = meshTestBed('mesh-fuzz');

  it('counts each malformed one, fails on none, and keeps serving', async () => {
    const dirs = ['victim', 'peer'].map((n) => path.join(bed.dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const victim = await startMeshNode({ name: 'victim', dir: dirs[0] as string, trustedOwners: owners });
    const peer = await startMeshNode({ name: 'peer', dir: dirs[1] as string, trustedOwners: owners });
    bed.nodes.push(victim, peer);
    const entry = signEntry(peer.node, { seq: 1, prev: null, hlc: { l: Date.now(), c: 0 }, type: 'reading', body: { v: 1 } });
    const headers: [MeshHeader, Buffer[]][] = [
      [{ t: 'hello', cert: peer.identity.certificate, have: {}, sv: 'AA==' }, []],
      [{ t: 'have', have: { [peer.node.nodeId]: 1 }, sv: 'AA==' }, []],
      [{ t: 'want', want: { [victim.node.nodeId]: 1 }, id: 1 }, []],
      [{ t: 'entries', hops: 0, reply: false, certs: [peer.identity.certificate], starts: {} }, [encodeEntry(entry)]],
      [{ t: 'state', update: 'AAA=', hops: 0 }, []],
      [{ t: 'fork', hops: 0 }, [encodeEntry(entry), encodeEntry(entry)]],
    ];
    const mutatedMessage = fc.record({ which: fc.nat({ max: headers.length - 1 }), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }).map(({ which, at, byte }) => {
      const [header, lines] = headers[which] as [MeshHeader, Buffer[]];
      const bytes = encodeMeshMessage(header, lines);
      bytes[at % bytes.length] = byte;
      return bytes;
    });
    const payloads = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j)), mutatedMessage), { numRuns: 200, seed: 10 });
    const refused = payloads.filter((p) => {
      try {
        decodeMeshMessage(p);
        return false;
      } catch {
        return true;
      }
    }).length;
    expect(refused).toBeGreaterThan(100);

    const client = await connectAs(peer, victim);
    try {
      const topic = meshTopic('apiary', peer.node.nodeId, victim.node.nodeId);
      for (const payload of payloads) await client.publishAsync(topic, payload, { qos: 1 });
      await waitFor(() => victim.counters.get('mesh.rejected.message_malformed') === refused, 20_000, bed.status);
      // Still serving: an honest entry from the peer applies.
      await client.publishAsync(topic, encodeMeshMessage(headers[3]?.[0] as MeshHeader, [encodeEntry(entry)]), { qos: 1 });
      await waitFor(() => victim.mesh.store.head(peer.node.nodeId).seq === 1, 10_000, bed.status);
      expect(victim.counters.get('mesh.errors')).toBe(0);
    } finally {
      await client.endAsync(true);
    }
  });
});
