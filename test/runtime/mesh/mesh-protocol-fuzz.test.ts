/**
 * Property tests of the mesh protocol (issue 10, "Fuzzing"): random and
 * mutated messages never escape the decoder as anything but
 * MESH_MESSAGE_INVALID, never crash a real node and are counted; and every
 * entries message a node builds fits the limits its peer enforces (finding 7).
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { issueCertificate } from '../../../runtime/mesh/certificate.js';
import { splitIntoMessages, messageBudget } from '../../../runtime/mesh/entry-batches.js';
import { encodeEntry, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { decodeMeshMessage, encodeMeshMessage, MAX_CERTS_PER_MESSAGE, MAX_ENTRIES_MESSAGE_BYTES } from '../../../runtime/mesh/mesh-protocol.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { sendOverLink } from '../../support/hostile-link.js';
import { mintIdentity } from '../../support/minted-nodes.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor } from '../../support/mesh-node.js';

const owner = mintIdentity();
const nodesPool = Array.from({ length: 400 }, () => mintIdentity());
const certs = new Map(nodesPool.map((n) => [n.nodeId, issueCertificate(owner, n, { box: n.publicKey, name: 'n', issuedAt: Date.now(), validForMs: 365 * 86_400_000 })]));
const validMessage = encodeMeshMessage({ t: 'have', have: { [nodesPool[0]?.nodeId ?? '']: 3 }, sv: 'AA==' });

/** A valid message, then bytes flipped, cut or spliced in. */
const mutated = fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), fc.uint8Array({ maxLength: 64 }))
  .map(([flips, cut, splice]) => {
    const bytes = Buffer.from(validMessage);
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return Buffer.concat([bytes.subarray(0, cut % (bytes.length + 1)), Buffer.from(splice)]);
  });

describe('mesh protocol under random input', () => {
  it('the decoder throws only MESH_MESSAGE_INVALID', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)), mutated, fc.json().map((j) => Buffer.from(j))), (payload) => {
      try {
        decodeMeshMessage(payload);
      } catch (err) {
        expect((err as { code?: string }).code).toBe(ErrorCodes.MESH_MESSAGE_INVALID);
      }
    }), { numRuns: 500 });
  });

  it('every entries message built fits the certificate and size limits, whatever the entries', () => {
    const entry = (node: (typeof nodesPool)[number], seq: number, pad: number): FeedEntry =>
      signEntry(node, { seq, prev: seq === 1 ? null : 'A'.repeat(43), hlc: { l: 1, c: 0 }, type: 'reading', body: { p: 'x'.repeat(pad) } });
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: nodesPool.length - 1 }), fc.integer({ min: 0, max: 60_000 })), { minLength: 1, maxLength: 600 }), (picks) => {
      const entries = picks.map(([i, pad], k) => entry(nodesPool[i] as (typeof nodesPool)[number], k + 1, pad % 7 === 0 ? pad : pad % 2000));
      const messages = splitIntoMessages(entries, messageBudget((origin) => certs.get(origin)));
      expect(messages.flat()).toHaveLength(entries.length);
      for (const part of messages) {
        const origins = [...new Set(part.map((e) => e.origin))];
        const starts = Object.fromEntries(origins.map((o) => [o, Number.MAX_SAFE_INTEGER]));
        const bytes = encodeMeshMessage({ t: 'entries', hops: 255, reply: true, certs: origins.map((o) => certs.get(o)), starts, answers: Number.MAX_SAFE_INTEGER }, part.map(encodeEntry));
        expect(origins.length).toBeLessThanOrEqual(MAX_CERTS_PER_MESSAGE);
        expect(bytes.length).toBeLessThanOrEqual(MAX_ENTRIES_MESSAGE_BYTES);
        expect(() => decodeMeshMessage(bytes)).not.toThrow();
      }
    }), { numRuns: 30 });
  });

  describe('at a real node', () => {
    const { dir, nodes, status } = meshTestBed('fuzz');

    it('counts random and mutated messages from a trusted peer as malformed and keeps serving it', async () => {
      const dirs = ['v', 'x'].map((n) => path.join(dir(), n)) as [string, string];
      const owners = await Promise.all(dirs.map(ownerKeyOf));
      const v = await startMeshNode({ name: 'v', dir: dirs[0], trustedOwners: owners });
      nodes.push(v);
      const x = await startMeshNode({ name: 'x', dir: dirs[1], trustedOwners: owners, mesh: { neighbours: [{ url: v.broker.url, nodeId: v.node.nodeId }] } });
      nodes.push(x);
      await waitFor(() => v.counters.get('mesh.received.hello') === 1, 10_000, status);
      const samples = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)), mutated), { numRuns: 200, seed: 42 });
      const link = (x.mesh as unknown as { links: Map<string, { send(p: Buffer): boolean }> }).links.get(v.node.nodeId);
      const before = v.counters.get('mesh.rejected.message_malformed');
      let accepted = 0;
      for (const payload of samples) {
        let valid = true;
        try {
          decodeMeshMessage(payload);
        } catch {
          valid = false;
        }
        if (valid) accepted++;
        await waitFor(() => link?.send(payload) ?? false, 10_000);
      }
      await waitFor(() => v.counters.get('mesh.rejected.message_malformed') - before === samples.length - accepted, 10_000, status);
      // Still linked and served: an entry x writes now arrives.
      await x.mesh.append('reading', { after: 'fuzz' });
      await sendOverLink(x, v, { t: 'have', have: x.mesh.store.have() });
      await waitFor(() => v.mesh.store.head(x.node.nodeId).seq === 1, 10_000, status);
    });
  });
});
