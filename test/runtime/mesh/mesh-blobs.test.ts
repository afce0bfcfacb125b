/**
 * Blob transfer between real mesh nodes (issue 12, point 6: a runtime
 * release fetched from neighbours in checked chunks): a blob spreads hop by
 * hop, a peer sending a bad chunk is refused and not asked again, a fetch
 * stopped midway resumes from its .part file, and an abort ends it cleanly.
 * Real brokers on loopback ports, real files; progress is seen through
 * counters and callbacks, never by time.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../runtime/cli/demo/mesh-demo.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { describeBlobFile, sha256Of, type BlobDescriptor } from '../../../runtime/mesh/blob-descriptor.js';
import { BLOB_FETCH_PER_PEER } from '../../../runtime/mesh/blob-fetch.js';
import { serveLying } from '../../support/hostile-link.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

function linkUp(from: TestMeshNode, to: TestMeshNode): boolean {
  return (from.mesh.status().peers as { nodeId: string; link: string }[]).some((p) => p.nodeId === to.node.nodeId && p.link === 'up');
}

/** Byte-equal (Buffer.equals: toEqual walks a megabyte element by element). */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.equals(b);
}

/** A file of random bytes and its descriptor. */
async function blobFile(file: string, size: number, chunkBytes?: number): Promise<BlobDescriptor> {
  await writeFile(file, randomBytes(size));
  return describeBlobFile(file, chunkBytes);
}

describe('blob transfer in the mesh', () => {
  const { dir, nodes, status } = meshTestBed('blobs');

  async function start(name: string, owners: string[], neighbours: TestMeshNode[] = [], port?: number): Promise<TestMeshNode> {
    const node = await startMeshNode({
      name, dir: path.join(dir(), name), trustedOwners: owners, ...(port === undefined ? {} : { port }),
      mesh: { neighbours: neighbours.map((n) => ({ url: n.broker.url, nodeId: n.node.nodeId })) },
    });
    nodes.push(node);
    return node;
  }
  const ownersOf = (...names: string[]) => Promise.all(names.map((n) => ownerKeyOf(path.join(dir(), n))));
  const bothUp = (pairs: [TestMeshNode, TestMeshNode][]) => waitFor(() => pairs.every(([x, y]) => linkUp(x, y) && linkUp(y, x)), 20_000, status);

  it('spreads along a line A-B-C: C asks B, which has the blob only once it fetched it from A, and then serves it', async () => {
    const owners = await ownersOf('a', 'b', 'c');
    const b = await start('b', owners);
    const a = await start('a', owners, [b]);
    const c = await start('c', owners, [b]);
    await bothUp([[a, b], [c, b]]);
    const source = path.join(dir(), 'release.bin');
    // Default chunks (128 KiB): each goes through the brokers as a message of about 175 KB.
    const descriptor = await blobFile(source, 9 * 128 * 1024 + 1000);
    expect(descriptor.chunks).toHaveLength(10);
    await a.mesh.blobs.serve(descriptor, source);
    const retry = { initialMs: 100, maxMs: 500 };

    const cDone = c.mesh.blobs.fetch(descriptor, path.join(c.dir, 'release.bin'), { retry });
    // B does not have it yet: C is told so, and keeps asking.
    await waitFor(() => c.counters.get('mesh.received.blob-none') > 0, 10_000, status);
    const bResult = await b.mesh.blobs.fetch(descriptor, path.join(b.dir, 'release.bin'), { retry });
    const cResult = await cDone;

    const original = await readFile(source);
    expect(sameBytes(await readFile(bResult.path), original)).toBe(true);
    expect(sameBytes(await readFile(cResult.path), original)).toBe(true);
    expect(bResult).toMatchObject({ chunksFetched: 10, chunksResumed: 0 });
    expect(cResult).toMatchObject({ chunksFetched: 10, chunksResumed: 0 });
    // C is not linked to A: every chunk it has came from B.
    expect(linkUp(c, a)).toBe(false);
    expect(a.counters.get('mesh.blobs.chunks_served')).toBeGreaterThanOrEqual(10);
    expect(b.counters.get('mesh.blobs.chunks_served')).toBeGreaterThanOrEqual(10);
    expect(c.counters.get('mesh.blobs.fetched')).toBe(1);
    expect(c.mesh.blobs.serving()).toEqual([descriptor.sha256]);
    expect(existsSync(`${cResult.path}.part`)).toBe(false);
  });

  it('refuses a bad chunk, never asks its sender again for that blob, and completes from another peer', async () => {
    const owners = await ownersOf('x', 'h', 'f');
    const x = await start('x', owners);
    const h = await start('h', owners);
    const f = await start('f', owners, [x, h]); // x first: it is asked first
    await bothUp([[f, x], [f, h]]);
    const source = path.join(dir(), 'blob.bin');
    const descriptor = await blobFile(source, 16 * 4096 - 100, 4096);
    const forged = path.join(dir(), 'forged.bin');
    await writeFile(forged, randomBytes(descriptor.size));
    await h.mesh.blobs.serve(descriptor, source);
    await serveLying(x, descriptor, forged);

    const result = await f.mesh.blobs.fetch(descriptor, path.join(f.dir, 'blob.bin'));
    expect(sameBytes(await readFile(result.path), await readFile(source))).toBe(true);
    expect(f.counters.get('mesh.rejected.blob_chunk_bad')).toBeGreaterThanOrEqual(1);
    // x was asked (at most one window's share), and not after its first bad chunk.
    expect(x.counters.get('mesh.received.blob-want')).toBeGreaterThan(0);
    expect(x.counters.get('mesh.received.blob-want')).toBeLessThanOrEqual(BLOB_FETCH_PER_PEER);
    expect(h.counters.get('mesh.blobs.chunks_served')).toBeGreaterThanOrEqual(16);
    expect(f.counters.get('mesh.blobs.chunks_fetched')).toBe(16);
  });

  it('resumes after the fetching node stopped midway: only the chunks not already in its .part file (intact) are fetched', async () => {
    const owners = await ownersOf('s', 'f');
    const s = await start('s', owners);
    const port = await freePort();
    let f = await start('f', owners, [s], port);
    await bothUp([[f, s]]);
    const source = path.join(dir(), 'blob.bin');
    const descriptor = await blobFile(source, 32 * 4096, 4096);
    await s.mesh.blobs.serve(descriptor, source);
    const dest = path.join(f.dir, 'blob.bin');

    // The node stops (mesh and broker) once 3 chunks are in.
    let stopping: Promise<void> | undefined;
    const stopped = f;
    const first = f.mesh.blobs.fetch(descriptor, dest, { onProgress: (p) => { if (p.done >= 3) stopping ??= stopped.stop(); } });
    await expect(first).rejects.toMatchObject({ code: ErrorCodes.BLOB_FETCH_ABORTED });
    await stopping;
    nodes.splice(nodes.indexOf(f), 1);
    expect(existsSync(dest)).toBe(false);
    const part = await readFile(`${dest}.part`);
    const intact = descriptor.chunks.map((hash, i) => sha256Of(part.subarray(i * 4096, (i + 1) * 4096)) === hash);
    const held = intact.filter(Boolean).length;
    expect(held).toBeGreaterThanOrEqual(3);
    expect(held).toBeLessThan(32);
    // As a crash would leave it: one chunk written only in part.
    const torn = intact.indexOf(true);
    part[torn * 4096 + 7] = (part[torn * 4096 + 7] ?? 0) ^ 0xff;
    await writeFile(`${dest}.part`, part);

    f = await start('f', owners, [s], port); // same data dir, same port: s's link to it comes back
    await bothUp([[f, s]]);
    const progress: number[] = [];
    const result = await f.mesh.blobs.fetch(descriptor, dest, { requestTimeoutMs: 2_000, onProgress: (p) => progress.push(p.done) });
    expect(result).toEqual({ path: dest, chunksResumed: held - 1, chunksFetched: 32 - (held - 1) });
    expect(f.counters.get('mesh.blobs.chunks_resumed')).toBe(held - 1);
    expect(f.counters.get('mesh.blobs.chunks_fetched')).toBe(32 - (held - 1));
    expect(progress[0]).toBe(held - 1);
    expect(progress.at(-1)).toBe(32);
    expect(sameBytes(await readFile(dest), await readFile(source))).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);

    // Fetching it again finds it in place: nothing is asked.
    const wantsBefore = f.counters.get('mesh.sent.blob-want');
    f.mesh.blobs.unserve(descriptor.sha256);
    expect(await f.mesh.blobs.fetch(descriptor, dest)).toEqual({ path: dest, chunksResumed: 32, chunksFetched: 0 });
    expect(f.counters.get('mesh.sent.blob-want')).toBe(wantsBefore);
  });

  it('goes on through a partition: a fetch begun with no peer, cut off midway, completes from a peer that links later', async () => {
    const owners = await ownersOf('f', 's', 'h');
    const f = await start('f', owners);
    const source = path.join(dir(), 'blob.bin');
    const descriptor = await blobFile(source, 32 * 4096, 4096);
    let cutOff: Promise<void> | undefined;
    const first: { s?: TestMeshNode } = {};
    const fetching = f.mesh.blobs.fetch(descriptor, path.join(f.dir, 'blob.bin'), {
      requestTimeoutMs: 2_000,
      // Once 3 chunks are in, s goes away: f is left with no peer at all.
      onProgress: (p) => { if (p.done >= 3 && first.s) cutOff ??= nodes.splice(nodes.indexOf(first.s), 1)[0]?.stop(); },
    });
    const s = first.s = await start('s', owners, [f]); // links to f after the fetch began; f links back
    await s.mesh.blobs.serve(descriptor, source);
    await waitFor(() => cutOff !== undefined, 20_000, status);
    await cutOff;
    const h = await start('h', owners, [f]);
    await h.mesh.blobs.serve(descriptor, source);
    const result = await fetching;
    expect(result).toMatchObject({ chunksResumed: 0, chunksFetched: 32 });
    expect(sameBytes(await readFile(result.path), await readFile(source))).toBe(true);
    expect(s.counters.get('mesh.blobs.chunks_served')).toBeGreaterThanOrEqual(3);
    expect(h.counters.get('mesh.blobs.chunks_served')).toBeGreaterThan(0);
  });

  it('waits while no peer has the blob, and ends cleanly on abort and on mesh stop', async () => {
    const owners = await ownersOf('s', 'f');
    const s = await start('s', owners);
    const f = await start('f', owners, [s]);
    await bothUp([[f, s]]);
    const source = path.join(dir(), 'blob.bin');
    const descriptor = await blobFile(source, 5 * 4096, 4096); // s does not serve it
    const dest = path.join(f.dir, 'blob.bin');
    const retry = { initialMs: 50, maxMs: 100 };

    const controller = new AbortController();
    const fetching = f.mesh.blobs.fetch(descriptor, dest, { signal: controller.signal, retry });
    await waitFor(() => f.counters.get('mesh.received.blob-none') >= 2, 10_000, status); // asked, told no, asked again
    await expect(f.mesh.blobs.fetch(descriptor, dest)).rejects.toMatchObject({ code: ErrorCodes.BLOB_BUSY });
    controller.abort();
    await expect(fetching).rejects.toMatchObject({ code: ErrorCodes.BLOB_FETCH_ABORTED });
    expect(f.counters.get('mesh.blobs.fetch_aborted')).toBe(1);
    expect(existsSync(`${dest}.part`)).toBe(true);
    // No timer is left asking: nothing more goes out (ten backoffs later).
    const asked = f.counters.get('mesh.sent.blob-want');
    await new Promise((resolve) => setTimeout(resolve, 10 * retry.maxMs));
    expect(f.counters.get('mesh.sent.blob-want')).toBe(asked);

    // The same blob may be fetched again; a mesh stop ends that fetch too, and refuses new ones.
    const again = f.mesh.blobs.fetch(descriptor, dest, { retry });
    const againEnds = expect(again).rejects.toMatchObject({ code: ErrorCodes.BLOB_FETCH_ABORTED });
    await waitFor(() => f.counters.get('mesh.sent.blob-want') > asked, 10_000, status);
    await nodes.splice(nodes.indexOf(f), 1)[0]?.stop();
    await againEnds;
    await expect(f.mesh.blobs.fetch(descriptor, dest)).rejects.toMatchObject({ code: ErrorCodes.BLOB_FETCH_ABORTED });
    expect(f.counters.get('mesh.blobs.fetch_aborted')).toBe(2);
  });
});
