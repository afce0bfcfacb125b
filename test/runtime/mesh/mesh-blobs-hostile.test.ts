/**
 * Blob messages from a hostile (but trusted) neighbour: a request for a blob
 * the node does not serve gets `blob-none`, malformed and unsolicited blob
 * messages are counted and dropped, and a flood of chunk requests is
 * answered only at the budgeted rate, while an honest peer is still served.
 * Measured by counters, not by time.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeBlobFile } from '../../../runtime/mesh/blob-descriptor.js';
import { sendOverLink, sendRawOverLink } from '../../support/hostile-link.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';
import type { ConfigInput } from '../../../runtime/config/schema.js';

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && a.equals(b);

describe('blob messages from a hostile neighbour', () => {
  const { dir, nodes, status } = meshTestBed('blobs-hostile');

  /** v, and x (and h) linked to it. */
  async function startNodes(names: string[], vMesh: ConfigInput['mesh'] = {}): Promise<TestMeshNode[]> {
    const owners = await Promise.all(['v', ...names].map((n) => ownerKeyOf(path.join(dir(), n))));
    const v = await startMeshNode({ name: 'v', dir: path.join(dir(), 'v'), trustedOwners: owners, mesh: vMesh });
    nodes.push(v);
    const others: TestMeshNode[] = [];
    for (const name of names) {
      const node = await startMeshNode({ name, dir: path.join(dir(), name), trustedOwners: owners, mesh: { neighbours: [{ url: v.broker.url, nodeId: v.node.nodeId }] } });
      nodes.push(node);
      others.push(node);
    }
    const up = (from: TestMeshNode, to: TestMeshNode) => (from.mesh.status().peers as { nodeId: string; link: string }[]).some((p) => p.nodeId === to.node.nodeId && p.link === 'up');
    await waitFor(() => others.every((o) => up(o, v) && up(v, o)), 20_000, status);
    return [v, ...others];
  }

  async function servedBlob(v: TestMeshNode, name: string, size: number) {
    const file = path.join(dir(), name);
    await writeFile(file, randomBytes(size));
    const descriptor = await describeBlobFile(file, 4096);
    await v.mesh.blobs.serve(descriptor, file);
    return { file, descriptor };
  }

  it('answers a request for a blob it does not serve with blob-none, and counts answers nobody asked for', async () => {
    const [v, x] = await startNodes(['x']) as [TestMeshNode, TestMeshNode];
    await sendOverLink(x, v, { t: 'blob-want', blob: 'ab'.repeat(32), index: 0 });
    await waitFor(() => v.counters.get('mesh.sent.blob-none') === 1, 10_000, status);
    // x never asked: the answer is counted and dropped there.
    await waitFor(() => x.counters.get('mesh.rejected.blob_unsolicited') === 1, 10_000, status);
    expect(x.counters.get('mesh.received.blob-none')).toBe(1);
    expect(v.counters.get('mesh.blobs.chunks_served')).toBe(0);
  });

  it('counts and drops malformed blob messages and unsolicited chunks, and keeps serving', async () => {
    const [v, x] = await startNodes(['x']) as [TestMeshNode, TestMeshNode];
    const { file, descriptor } = await servedBlob(v, 'blob.bin', 3 * 4096 + 5);
    const blob = descriptor.sha256;
    const chunk = Buffer.from(randomBytes(4096).toString('base64'));
    const malformed = [
      Buffer.from(JSON.stringify({ t: 'blob', blob, index: 0 })), // a chunk without its line
      Buffer.concat([Buffer.from(JSON.stringify({ t: 'blob', blob, index: 0 })), Buffer.from('\n'), chunk, Buffer.from('\n'), chunk]), // two lines
      Buffer.concat([Buffer.from(JSON.stringify({ t: 'blob-none', blob, index: 0 })), Buffer.from('\nAAAA')]), // a body where none goes
      Buffer.from(JSON.stringify({ t: 'blob-want', blob, index: -1 })),
      Buffer.from(JSON.stringify({ t: 'blob-want', blob, index: 1e9 })),
      Buffer.from(JSON.stringify({ t: 'blob-want', blob: blob.toUpperCase(), index: 0 })),
      Buffer.from(JSON.stringify({ t: 'blob-want', blob: '../../etc/passwd', index: 0 })),
      Buffer.from(JSON.stringify({ t: 'blob-want', blob, index: 0, path: '/etc/passwd' })),
      Buffer.from(JSON.stringify({ t: 'blob-want', blob })),
    ];
    for (const payload of malformed) await sendRawOverLink(x, v, payload);
    await waitFor(() => v.counters.get('mesh.rejected.message_malformed') === malformed.length, 10_000, status);
    // Well-formed, but v asked for nothing: its content is never looked at.
    await sendOverLink(x, v, { t: 'blob', blob, index: 0 }, [chunk]);
    await waitFor(() => v.counters.get('mesh.rejected.blob_unsolicited') === 1, 10_000, status);
    expect(v.counters.get('mesh.sent.blob')).toBe(0);

    // Still serving: x fetches the blob.
    const result = await x.mesh.blobs.fetch(descriptor, path.join(x.dir, 'blob.bin'));
    expect(sameBytes(await readFile(result.path), await readFile(file))).toBe(true);
  });

  it('answers a flood of chunk requests at the budgeted rate, counts the rest, and still serves an honest peer', async () => {
    const [v, x, h] = await startNodes(['x', 'h'], { budgets: { blobChunksPerSecond: 0.1, blobChunkBurst: 5 } }) as [TestMeshNode, TestMeshNode, TestMeshNode];
    const flooded = await servedBlob(v, 'flooded.bin', 8 * 4096);
    for (let i = 0; i < 100; i++) await sendOverLink(x, v, { t: 'blob-want', blob: flooded.descriptor.sha256, index: i % 8 });
    await waitFor(() => v.counters.get('mesh.received.blob-want') === 100, 10_000, status);
    expect(v.counters.get('mesh.rejected.blob_rate')).toBeGreaterThanOrEqual(100 - 6);
    // At most a burst of chunks (and what the bucket refilled meanwhile) were read and sent.
    expect(v.counters.get('mesh.blobs.chunks_served')).toBeLessThanOrEqual(6);
    expect(v.counters.get('mesh.blobs.chunks_served') + v.counters.get('mesh.rejected.blob_rate')).toBe(100);

    // h has its own bucket: a blob within its burst comes whole.
    const small = await servedBlob(v, 'small.bin', 4 * 4096 - 1);
    const result = await h.mesh.blobs.fetch(small.descriptor, path.join(h.dir, 'small.bin'));
    expect(sameBytes(await readFile(result.path), await readFile(small.file))).toBe(true);
    expect(h.counters.get('mesh.blobs.chunks_fetched')).toBe(4);
  });
});
