import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { encodeRecord, FRAME_HEADER_BYTES, MAX_RECORD_BYTES, scanFrames } from '../../../runtime/storage/record-frame.js';

const payloads = [Buffer.from('first'), Buffer.from([0, 1, 2, 255, 254]), Buffer.from('x'.repeat(1000))];
const framed = () => Buffer.concat(payloads.map((p) => encodeRecord(p)));

describe('record-frame', () => {
  it('encodes length, CRC-32 and payload, little-endian', () => {
    const frame = encodeRecord(Buffer.from('hello'));
    expect(frame.length).toBe(FRAME_HEADER_BYTES + 5);
    expect(frame.readUInt32LE(0)).toBe(5);
    expect(frame.readUInt32LE(4)).toBe(crc32(Buffer.from('hello')));
    expect(frame.subarray(8).toString()).toBe('hello');
  });

  it('round-trips several records', () => {
    const buf = framed();
    const scan = scanFrames(buf);
    expect(scan.payloads).toEqual(payloads);
    expect(scan.end).toBe(buf.length);
    expect(scan.stop).toBe('end');
  });

  it('stops before a truncated tail, at every cut point', () => {
    const buf = framed();
    const lastStart = buf.length - (FRAME_HEADER_BYTES + 1000);
    for (const cut of [lastStart + 1, lastStart + 7, lastStart + 8, lastStart + 500, buf.length - 1]) {
      const scan = scanFrames(buf.subarray(0, cut));
      expect(scan.payloads).toEqual(payloads.slice(0, 2));
      expect(scan.end).toBe(lastStart);
      expect(scan.stop).toBe('incomplete');
    }
    // Once the header is in, the scanner knows the whole frame's size.
    expect(scanFrames(buf.subarray(0, lastStart + 8)).needed).toBe(FRAME_HEADER_BYTES + 1000);
  });

  it('stops at the record whose byte was flipped', () => {
    const buf = framed();
    const second = FRAME_HEADER_BYTES + payloads[0]!.length;
    buf[second + FRAME_HEADER_BYTES + 2]! ^= 0x01;
    const scan = scanFrames(buf);
    expect(scan.payloads).toEqual([payloads[0]]);
    expect(scan.end).toBe(second);
    expect(scan.stop).toBe('corrupt');
    // Without verification the frames are still walked (used only to count drops).
    expect(scanFrames(buf, { verify: false }).payloads).toHaveLength(3);
  });

  it('treats a length above the limit, or zero, as corruption', () => {
    const good = encodeRecord(Buffer.from('ok'));
    const huge = Buffer.alloc(FRAME_HEADER_BYTES + 16);
    huge.writeUInt32LE(MAX_RECORD_BYTES + 1, 0);
    const scan = scanFrames(Buffer.concat([good, huge]));
    expect(scan.payloads.map(String)).toEqual(['ok']);
    expect(scan.end).toBe(good.length);
    expect(scan.stop).toBe('corrupt');
    // A zero-filled tail must not read back as empty records.
    const zeros = scanFrames(Buffer.concat([good, Buffer.alloc(64)]));
    expect(zeros.payloads).toHaveLength(1);
    expect(zeros.stop).toBe('corrupt');
  });

  it('refuses to encode oversized or empty records', () => {
    expect(() => encodeRecord(Buffer.alloc(MAX_RECORD_BYTES + 1))).toThrow(expect.objectContaining({ code: ErrorCodes.RECORD_TOO_LARGE }));
    expect(encodeRecord(Buffer.alloc(MAX_RECORD_BYTES)).length).toBe(MAX_RECORD_BYTES + FRAME_HEADER_BYTES);
    expect(() => encodeRecord(Buffer.alloc(0))).toThrow(RangeError);
  });
});
