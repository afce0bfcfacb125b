/**
 * A blob descriptor names one file by content: its sha256, its size, the
 * chunk size it is moved in, and the sha256 of every chunk. Whoever hands a
 * descriptor to the mesh (a signed announcement in a feed, say) vouches for
 * it; the mesh then checks every chunk a neighbour sends against it before a
 * byte is written, and the whole file before it is renamed into place.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { ApiaryError, ErrorCodes } from '../errors.js';

export interface BlobDescriptor {
  /** sha256 of the whole file, lower-case hex: the blob's name on the wire. */
  readonly sha256: string;
  readonly size: number;
  /** Bytes per chunk; the last chunk holds the rest. */
  readonly chunkBytes: number;
  /** sha256 (lower-case hex) of each chunk, in order. */
  readonly chunks: readonly string[];
}

/** Default chunk size: a chunk goes base64'd in one message, well under the 256 KiB entries budget. */
export const DEFAULT_BLOB_CHUNK_BYTES = 128 * 1024;
/** Largest chunk: base64'd (4/3) plus a header it is 256 KiB and a little, under the broker's 300 000-byte packet limit. */
export const MAX_BLOB_CHUNK_BYTES = 192 * 1024;
export const MIN_BLOB_CHUNK_BYTES = 4 * 1024;
/** Largest blob accepted unless the caller says otherwise. */
export const DEFAULT_MAX_BLOB_BYTES = 64 * 1024 ** 2;
/** Hard bound of any blob (and so of a descriptor's chunk list). */
export const MAX_BLOB_BYTES = 1024 ** 3;

export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a sha256 as 64 lower-case hex digits' });

const descriptorSchema = z.strictObject({
  sha256: sha256Hex,
  size: z.number().int().min(1).max(MAX_BLOB_BYTES),
  chunkBytes: z.number().int().min(MIN_BLOB_CHUNK_BYTES).max(MAX_BLOB_CHUNK_BYTES),
  chunks: z.array(sha256Hex).min(1).max(Math.ceil(MAX_BLOB_BYTES / MIN_BLOB_CHUNK_BYTES)),
});

/** Chunks a blob of `size` bytes is cut into. */
export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

/** Byte length of chunk `index` of `descriptor`. */
export function chunkLength(descriptor: BlobDescriptor, index: number): number {
  return Math.min(descriptor.chunkBytes, descriptor.size - index * descriptor.chunkBytes);
}

/**
 * Checks a descriptor from outside (an announcement, a caller): the shape,
 * and that its chunk list agrees with its size. Throws BLOB_DESCRIPTOR_INVALID
 * naming the field.
 */
export function decodeBlobDescriptor(raw: unknown, maxBytes = DEFAULT_MAX_BLOB_BYTES): BlobDescriptor {
  const parsed = descriptorSchema.safeParse(raw);
  if (!parsed.success) {
    throw invalid(`bad blob descriptor: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'descriptor'}: ${i.message}`).join('; ')}`);
  }
  const d = parsed.data;
  if (d.size > maxBytes) throw invalid(`field "size": ${d.size} bytes is over the ${maxBytes} allowed for a blob here`);
  const expected = chunkCount(d.size, d.chunkBytes);
  if (d.chunks.length !== expected) {
    throw invalid(`field "chunks": ${d.chunks.length} chunk hashes, but ${d.size} bytes in chunks of ${d.chunkBytes} make ${expected}`);
  }
  return { sha256: d.sha256, size: d.size, chunkBytes: d.chunkBytes, chunks: [...d.chunks] };
}

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Reads `file` chunk by chunk (one chunk in memory at a time) and returns its
 * descriptor: what an announcement names, and what serve() checks a file against.
 */
export async function describeBlobFile(file: string, chunkBytes = DEFAULT_BLOB_CHUNK_BYTES): Promise<BlobDescriptor> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_BLOB_CHUNK_BYTES || chunkBytes > MAX_BLOB_CHUNK_BYTES) {
    throw invalid(`field "chunkBytes": ${chunkBytes} is not a whole number of bytes from ${MIN_BLOB_CHUNK_BYTES} to ${MAX_BLOB_CHUNK_BYTES}`);
  }
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const whole = createHash('sha256');
    const chunks: string[] = [];
    const buffer = Buffer.alloc(chunkBytes);
    for (let offset = 0; offset < size; offset += chunkBytes) {
      const bytes = await readFully(handle, buffer, Math.min(chunkBytes, size - offset), offset);
      whole.update(bytes);
      chunks.push(sha256Of(bytes));
    }
    return decodeBlobDescriptor({ sha256: whole.digest('hex'), size, chunkBytes, chunks }, MAX_BLOB_BYTES);
  } finally {
    await handle.close();
  }
}

/** Reads exactly `length` bytes at `offset` into `buffer` (a short file reads short: the caller's hash check then fails). */
export async function readFully(handle: Awaited<ReturnType<typeof open>>, buffer: Buffer, length: number, offset: number): Promise<Buffer> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buffer, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}

function invalid(message: string): ApiaryError {
  return new ApiaryError(ErrorCodes.BLOB_DESCRIPTOR_INVALID, message, {
    hint: 'build the descriptor with describeBlobFile() from the very file announced',
  });
}
