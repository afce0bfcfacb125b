/**
 * The release format: a model file cut into chunks and put back together,
 * with every way a release from the network can be wrong refused by code.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleModel, chunkModel, type ModelChunkBody, MAX_RELEASE_BYTES, MODEL_CHUNK_BYTES, MODEL_CHUNK_TYPE, parseRelease, releaseBody } from '../../models/registry/model-release.js';
import { parseManifest, sha256Hex } from '../../models/registry/manifest.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { expectApiaryError, HIVE_SOUND_DIR } from './helpers.js';

async function release(size: number) {
  const json = JSON.parse(await readFile(path.join(HIVE_SOUND_DIR, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 7919) % 251);
  const manifestJson = { ...json, sha256: sha256Hex(bytes) };
  const chunks = chunkModel(bytes);
  const seqs = chunks.map((_, i) => 10 + i);
  const body = releaseBody(manifestJson, parseManifest(manifestJson, 'test'), bytes, seqs);
  const entries = new Map<number, { type: string; body: ModelChunkBody }>(chunks.map((c, i) => [10 + i, { type: MODEL_CHUNK_TYPE, body: c }]));
  return { bytes, body, entries, read: (seq: number) => Promise.resolve(entries.get(seq)) };
}

describe('model releases', () => {
  it('cuts a file into 32 KiB chunks and puts it back together exactly', async () => {
    const r = await release(3 * MODEL_CHUNK_BYTES + 5);
    expect(r.body.chunks.map((c) => c.bytes)).toEqual([MODEL_CHUNK_BYTES, MODEL_CHUNK_BYTES, MODEL_CHUNK_BYTES, 5]);
    expect(parseRelease(JSON.parse(JSON.stringify(r.body)), 'test').manifest.sha256).toBe(sha256Hex(r.bytes));
    expect(await assembleModel(r.body, r.read)).toEqual(r.bytes);
  });

  it('refuses a chunk whose bytes do not match the hash the release names', async () => {
    const r = await release(MODEL_CHUNK_BYTES + 100);
    const second = r.entries.get(11)?.body;
    if (!second) throw new Error('two chunks');
    const data = Buffer.from(second.data, 'base64');
    data[0] = (data[0] ?? 0) ^ 1;
    r.entries.set(11, { type: MODEL_CHUNK_TYPE, body: { ...second, data: data.toString('base64') } });
    const err = await expectApiaryError(() => assembleModel(r.body, r.read), ErrorCodes.MODEL_UPDATE_INVALID);
    expect(err.message).toMatch(/chunk 1 \(entry #11\).*does not match its hash/);
  });

  it('refuses a missing chunk, an entry of another kind, and chunks out of order', async () => {
    const r = await release(2 * MODEL_CHUNK_BYTES);
    await expectApiaryError(() => assembleModel(r.body, (seq) => (seq === 11 ? Promise.resolve(undefined) : r.read(seq))), ErrorCodes.MODEL_UPDATE_INVALID);
    await expectApiaryError(() => assembleModel(r.body, async (seq) => (seq === 10 ? { type: 'reading', body: (await r.read(seq))?.body as unknown } : r.read(seq))), ErrorCodes.MODEL_UPDATE_INVALID);
    const swapped = { ...r.body, chunks: [r.body.chunks[1], r.body.chunks[0]].filter((c) => c !== undefined) };
    await expectApiaryError(() => assembleModel(swapped, r.read), ErrorCodes.MODEL_UPDATE_INVALID);
  });

  it('refuses releases that disagree with their manifest or are malformed', async () => {
    const { body } = await release(1000);
    for (const bad of [
      null,
      { ...body, version: '9.9.9' },
      { ...body, size: 999 },
      { ...body, chunks: [] },
      { ...body, sha256: 'nothex' },
      { ...body, extra: true },
      { ...body, manifest: { ...body.manifest, name: 'Not A Name' } },
    ]) {
      expect(() => parseRelease(bad, 'test')).toThrow(/APIARY_MODEL_UPDATE_INVALID|is invalid|not a model release|names|chunks of/);
    }
  });

  it('will not publish an empty or oversized model', () => {
    expect(() => chunkModel(new Uint8Array(0))).toThrow(/cannot be published/);
    expect(() => chunkModel(new Uint8Array(MAX_RELEASE_BYTES + 1))).toThrow(/cannot be published/);
  });
});
