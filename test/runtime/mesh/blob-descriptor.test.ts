/**
 * Blob descriptors: built from a real file, checked field by field, and a
 * file is served only under the descriptor it matches.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { decodeBlobDescriptor, describeBlobFile, type BlobDescriptor } from '../../../runtime/mesh/blob-descriptor.js';
import { BlobTransfer } from '../../../runtime/mesh/blob-transfer.js';
import { decodeMeshMessage, encodeMeshMessage, MAX_ENTRIES_MESSAGE_BYTES } from '../../../runtime/mesh/mesh-protocol.js';

let dir = '';
let file = '';
let bytes: Buffer;
let descriptor: BlobDescriptor;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-blob-descriptor-'));
  file = path.join(dir, 'blob.bin');
  bytes = randomBytes(3 * 8192 + 17);
  await writeFile(file, bytes);
  descriptor = await describeBlobFile(file, 8192);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('blob descriptors', () => {
  it('names a file by its sha256 and the sha256 of each chunk', () => {
    expect(descriptor).toEqual({
      sha256: sha(bytes), size: bytes.length, chunkBytes: 8192,
      chunks: [0, 1, 2, 3].map((i) => sha(bytes.subarray(i * 8192, (i + 1) * 8192))),
    });
    expect(decodeBlobDescriptor(JSON.parse(JSON.stringify(descriptor)))).toEqual(descriptor);
  });

  it.each([
    ['a chunk list that does not add up to the size', { chunks: ['0'.repeat(64)] }, /field "chunks": 1 chunk hashes, but .* make 4/],
    ['a blob over the limit', { size: 65 * 1024 ** 2, chunks: [] }, /chunks|size/],
    ['a chunk size over 192 KiB', { chunkBytes: 256 * 1024 }, /chunkBytes/],
    ['a sha256 in upper case', { sha256: 'A'.repeat(64) }, /sha256: expected a sha256/],
    ['a negative size', { size: -1 }, /size/],
    ['an unknown field', { path: '/etc/passwd' }, /path|Unrecognized/i],
  ])('refuses %s, naming the field', (_what, change, message) => {
    const bad = { ...descriptor, ...change };
    expect(() => decodeBlobDescriptor(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.BLOB_DESCRIPTOR_INVALID, message: expect.stringMatching(message) as unknown }));
  });

  it('refuses a blob over the limit the caller gives', () => {
    expect(() => decodeBlobDescriptor(descriptor, 1024)).toThrow(/field "size": 24593 bytes is over the 1024 allowed/);
  });

  it('serves a file only under the descriptor it matches', async () => {
    const blobs = new BlobTransfer({
      counters: new Counters(), logger: pino({ level: 'silent' }), budget: { chunksPerSecond: 1, chunkBurst: 1 },
      peers: () => [], linked: () => false, send: () => false,
    });
    const other = path.join(dir, 'other.bin');
    await writeFile(other, randomBytes(bytes.length));
    await expect(blobs.serve(descriptor, other)).rejects.toMatchObject({ code: ErrorCodes.BLOB_INVALID });
    await expect(blobs.serve(descriptor, path.join(dir, 'missing.bin'))).rejects.toMatchObject({ code: ErrorCodes.BLOB_INVALID });
    expect(blobs.serving()).toEqual([]);
    await blobs.serve(descriptor, file);
    expect(blobs.serving()).toEqual([descriptor.sha256]);
    expect(blobs.unserve(descriptor.sha256)).toBe(true);
    expect(blobs.unserve(descriptor.sha256)).toBe(false);
    // A destination it cannot write: a clear error, before any peer is asked.
    await expect(blobs.fetch(descriptor, path.join(dir, 'no-such-dir', 'blob.bin'))).rejects.toMatchObject({ code: ErrorCodes.STORAGE_IO, message: expect.stringMatching(/cannot write .*no-such-dir/) as unknown });
    await blobs.stop();
  });
});

describe('blob messages on the wire', () => {
  it('round-trip, and the largest chunk fits the entries message budget', () => {
    const blob = 'c'.repeat(64);
    const line = Buffer.from(randomBytes(192 * 1024).toString('base64'));
    const message = encodeMeshMessage({ t: 'blob', blob, index: 262_143 }, [line]);
    expect(message.length).toBeLessThanOrEqual(MAX_ENTRIES_MESSAGE_BYTES + 128);
    expect(decodeMeshMessage(message)).toEqual({ header: { t: 'blob', blob, index: 262_143 }, lines: [line] });
    for (const t of ['blob-want', 'blob-none'] as const) expect(decodeMeshMessage(encodeMeshMessage({ t, blob, index: 0 })).header).toEqual({ t, blob, index: 0 });
  });

  it('mutated blob messages are refused only with MESH_MESSAGE_INVALID', () => {
    const valid = encodeMeshMessage({ t: 'blob', blob: 'c'.repeat(64), index: 3 }, [Buffer.from('AAAA')]);
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), fc.uint8Array({ maxLength: 64 }), (flips, cut, splice) => {
      const bytes = Buffer.from(valid);
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      const payload = Buffer.concat([bytes.subarray(0, cut % (bytes.length + 1)), Buffer.from(splice)]);
      try {
        decodeMeshMessage(payload);
      } catch (err) {
        expect((err as { code?: string }).code).toBe(ErrorCodes.MESH_MESSAGE_INVALID);
      }
    }), { numRuns: 500 });
  });
});
