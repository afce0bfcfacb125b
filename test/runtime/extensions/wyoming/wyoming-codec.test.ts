import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeWyomingEvent, WyomingDecoder, WyomingFormatError } from '../../../../runtime/extensions/wyoming/wyoming-codec.js';
import { wyomingBytes } from '../../../support/wyoming-client.js';

const LIMITS = { maxHeaderBytes: 256, maxDataBytes: 1024, maxPayloadBytes: 4096 };

describe('Wyoming codec', () => {
  it('decodes a header, its data section merged over the header data, and its payload, however the bytes are split', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    const header = Buffer.from(`${JSON.stringify({ type: 'audio-chunk', data: { rate: 8000, channels: 2 }, data_length: 28, payload_length: 300 })}\n`);
    const data = Buffer.from(JSON.stringify({ rate: 16000, width: 2 }).padEnd(28, ' '));
    const bytes = Buffer.concat([header, data, payload, wyomingBytes('describe')]);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 6 }), (cuts) => {
      const decoder = new WyomingDecoder(LIMITS);
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const events = [0, ...points].flatMap((at, i) => decoder.push(bytes.subarray(at, points[i] ?? bytes.length)));
      expect(events.map((e) => e.type)).toEqual(['audio-chunk', 'describe']);
      expect(events[0]!.data).toEqual({ rate: 16000, width: 2, channels: 2 });
      expect(events[0]!.payload).toEqual(payload);
      expect(events[1]!.payload).toBeUndefined();
      expect(decoder.pendingBytes).toBe(0);
    }));
  });

  it('round-trips what it encodes, and writes the lengths a Python peer reads', () => {
    const payload = Buffer.from([1, 2, 3, 4]);
    const bytes = encodeWyomingEvent({ type: 'transcript', data: { text: 'how is the hive' }, payload });
    const header = JSON.parse(bytes.subarray(0, bytes.indexOf(0x0a)).toString()) as Record<string, unknown>;
    expect(header).toMatchObject({ type: 'transcript', data_length: Buffer.byteLength(JSON.stringify({ text: 'how is the hive' })), payload_length: 4 });
    expect(header.data).toBeUndefined(); // data travels in the data section, as wyoming/event.py writes it
    const [event] = new WyomingDecoder(LIMITS).push(bytes);
    expect(event).toEqual({ type: 'transcript', data: { text: 'how is the hive' }, payload });
  });

  it.each([
    ['a header that is not JSON', Buffer.from('not json\n'), /not a UTF-8 JSON object/],
    ['a header that is an array', Buffer.from('[1,2]\n'), /not a JSON object/],
    ['an event type that is not a name', Buffer.from('{"type":"Bad Type"}\n'), /not a lower-case name/],
    ['a negative data_length', Buffer.from('{"type":"x","data_length":-1}\n'), /not a byte count/],
    ['a fractional payload_length', Buffer.from('{"type":"x","payload_length":1.5}\n'), /not a byte count/],
    ['a payload over the limit', Buffer.from('{"type":"x","payload_length":4097}\n'), /over the limit of 4096/],
    ['a data section over the limit', Buffer.from('{"type":"x","data_length":1025}\n'), /over the limit of 1024/],
    ['data that is not an object', Buffer.from('{"type":"x","data":[1]}\n'), /"data" of x is not a JSON object/],
    ['a data section that is not JSON', Buffer.concat([Buffer.from('{"type":"x","data_length":3}\n'), Buffer.from('abc')]), /data section of x/],
    ['invalid UTF-8 in the header', Buffer.concat([Buffer.from('{"type":"x","data":{"t":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}\n')]), /UTF-8/],
  ])('refuses %s', (_what, bytes, message) => {
    expect(() => new WyomingDecoder(LIMITS).push(bytes)).toThrow(message);
    expect(() => new WyomingDecoder(LIMITS).push(bytes)).toThrow(WyomingFormatError);
  });

  it('refuses a header line longer than the limit before its newline arrives (nothing unbounded is buffered)', () => {
    const decoder = new WyomingDecoder(LIMITS);
    expect(decoder.push(Buffer.from('{"type":"x",'))).toEqual([]);
    expect(() => decoder.push(Buffer.alloc(300, 0x20))).toThrow(/longer than 256 bytes/);
  });
});
