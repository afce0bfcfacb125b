/**
 * On-disk framing of one stream record:
 *
 *   u32 LE payload length | u32 LE CRC-32 of payload | payload
 *
 * There is no magic or version: a segment file only ever holds frames, and
 * recovery needs just two facts per frame, "is it whole?" (length) and "is it
 * the bytes we wrote?" (CRC). Scanning stops at the first frame that fails
 * either, so the valid prefix of a file is exactly what was written intact.
 */
import { crc32 } from 'node:zlib';
import { ApiaryError, ErrorCodes } from '../errors.js';

export const FRAME_HEADER_BYTES = 8;
/**
 * Largest payload accepted. It bounds the memory a reader must hold for one
 * frame, and lets a scanner tell a garbage length field from a real one.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** Frames one payload. Throws RECORD_TOO_LARGE above MAX_RECORD_BYTES. */
export function encodeRecord(payload: Uint8Array): Buffer {
  if (payload.length > MAX_RECORD_BYTES) {
    throw new ApiaryError(
      ErrorCodes.RECORD_TOO_LARGE,
      `record of ${payload.length} bytes is larger than the ${MAX_RECORD_BYTES}-byte limit`,
      { hint: 'split the record or store a reference to the data instead' },
    );
  }
  // Empty payloads are refused: a run of zero bytes (what some file systems
  // leave in a file's tail after a power cut) would otherwise read back as a
  // series of valid empty records, since CRC-32 of nothing is 0.
  if (payload.length === 0) throw new RangeError('a stream record must not be empty');
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export interface FrameScan {
  /** Payloads of the whole, valid frames, in order (views into the scanned buffer). */
  readonly payloads: Buffer[];
  /** Byte offset where the valid prefix ends: the start of the first bad or partial frame. */
  readonly end: number;
  /**
   * Why scanning stopped: 'end' = the buffer ends exactly after a frame;
   * 'incomplete' = a partial frame follows (more bytes might complete it);
   * 'corrupt' = the next frame's length is impossible or its CRC is wrong.
   */
  readonly stop: 'end' | 'incomplete' | 'corrupt';
  /** Total size of the frame at `end` once its header is known, else FRAME_HEADER_BYTES. */
  readonly needed: number;
  readonly reason?: string;
}

export interface ScanOptions {
  /**
   * false = follow length fields without checking CRCs. Recovery uses it to
   * count how many frames sit after a corrupt one, so they are not dropped
   * silently; never used to return data.
   */
  readonly verify?: boolean;
}

/** Reads frames from the start of `buf` until the first incomplete or invalid one. */
export function scanFrames(buf: Buffer, options: ScanOptions = {}): FrameScan {
  const verify = options.verify ?? true;
  const payloads: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const left = buf.length - offset;
    if (left === 0) return { payloads, end: offset, stop: 'end', needed: FRAME_HEADER_BYTES };
    if (left < FRAME_HEADER_BYTES) return { payloads, end: offset, stop: 'incomplete', needed: FRAME_HEADER_BYTES };
    const length = buf.readUInt32LE(offset);
    if (length === 0 || length > MAX_RECORD_BYTES) {
      return { payloads, end: offset, stop: 'corrupt', needed: FRAME_HEADER_BYTES, reason: `impossible record length ${length}` };
    }
    const size = FRAME_HEADER_BYTES + length;
    if (left < size) return { payloads, end: offset, stop: 'incomplete', needed: size };
    const payload = buf.subarray(offset + FRAME_HEADER_BYTES, offset + size);
    if (verify && crc32(payload) !== buf.readUInt32LE(offset + 4)) {
      return { payloads, end: offset, stop: 'corrupt', needed: size, reason: 'CRC mismatch' };
    }
    payloads.push(payload);
    offset += size;
  }
}
