import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { decodeEntry, encodeEntry, entryHash, MAX_ENTRY_BYTES, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';

describe('feed entries', () => {
  let dir: string;
  let alice: NodeIdentity;
  let mallory: NodeIdentity;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-feed-'));
    alice = (await loadOrCreateIdentity(path.join(dir, 'alice'))).identity;
    mallory = (await loadOrCreateIdentity(path.join(dir, 'mallory'))).identity;
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const first = () => signEntry(alice, { seq: 1, prev: null, hlc: { l: 1_700_000_000_000, c: 0 }, type: 'reading', body: { channel: 'temperature', value: 34.5 } });
  const reencode = (e: FeedEntry, change: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...e, ...change }));

  it('round-trips a signed entry, and chains the next one by hash', () => {
    const e1 = first();
    expect(decodeEntry(encodeEntry(e1))).toEqual(e1);
    expect(JSON.parse(e1.body)).toEqual({ channel: 'temperature', value: 34.5 });
    const e2 = signEntry(alice, { seq: 2, prev: entryHash(e1), hlc: { l: 1_700_000_000_001, c: 0 }, type: 'decision', body: { rule: 'swarming' } });
    expect(decodeEntry(encodeEntry(e2)).prev).toBe(entryHash(e1));
    expect(entryHash(e2)).not.toBe(entryHash(e1));
  });

  it('refuses any change to a signed field, as a signature failure', () => {
    const e1 = first();
    for (const change of [{ body: '{"channel":"temperature","value":40}' }, { hlc: { l: e1.hlc.l + 1, c: 0 } }, { type: 'decision' }]) {
      expect(() => decodeEntry(reencode(e1, change))).toThrow(expect.objectContaining({ code: ErrorCodes.FEED_SIGNATURE_INVALID }) as Error);
    }
  });

  it('refuses an entry signed by another key, or claiming another origin', () => {
    const e1 = first();
    const forged = signEntry(mallory, { seq: 1, prev: null, hlc: e1.hlc, type: 'reading', body: { value: 1 } });
    expect(() => decodeEntry(reencode(forged, { origin: alice.nodeId }))).toThrow(expect.objectContaining({ code: ErrorCodes.FEED_SIGNATURE_INVALID }) as Error);
    expect(() => decodeEntry(reencode(e1, { sig: forged.sig }))).toThrow(expect.objectContaining({ code: ErrorCodes.FEED_SIGNATURE_INVALID }) as Error);
  });

  it('refuses malformed and oversized input with a clear reason, never crashing', () => {
    const e1 = first();
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('not json'), /not JSON/],
      [Buffer.from('[1,2]'), /not a JSON object/],
      [reencode(e1, { seq: 0 }), /seq/],
      [reencode(e1, { seq: 2 }), /prev is not an entry hash/],
      [reencode(e1, { prev: 'x' }), /prev null/],
      [reencode(e1, { hlc: { l: -1, c: 0 } }), /hlc/],
      [reencode(e1, { type: 'Reading!' }), /type/],
      [reencode(e1, { body: '{' }), /body is not valid JSON/],
      [reencode(e1, { extra: 1 }), /unknown field/],
      [reencode(e1, { v: 2 }), /format version/],
      [Buffer.alloc(MAX_ENTRY_BYTES + 1, 0x20), /exceeds/],
    ];
    for (const [bytes, reason] of cases) {
      expect(() => decodeEntry(bytes)).toThrow(reason);
      expect(() => decodeEntry(bytes)).toThrow(expect.objectContaining({ code: ErrorCodes.FEED_ENTRY_INVALID }) as Error);
    }
  });
});
