/**
 * A model release over the mesh: the model file cut into chunk entries,
 * then one release entry that names them, all in the publishing node's
 * signed feed. The feed already carries entries through partitions and
 * catches up afterwards, in order per origin, so by the time a node applies
 * the release it holds every chunk before it.
 *
 * Three layers of checks: each entry is signed by its origin (feed-entry.ts);
 * each chunk's sha256 is named by the release; the whole file's sha256 is
 * pinned by the manifest, which the model's owner signs
 * (manifest-signature.ts). A relay can drop a release but cannot change one.
 *
 *   model-chunk   { model: <sha256 of the file>, index, data: base64 }
 *   model-release { name, version, sha256, size, manifest: <signed manifest JSON>,
 *                   chunks: [ { seq, sha256, bytes } ] }
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import { parseManifest, type ModelManifest } from './manifest.js';

export const MODEL_CHUNK_TYPE = 'model-chunk';
export const MODEL_RELEASE_TYPE = 'model-release';
/** 32 KiB of model per chunk: 43 KiB in base64, well inside a 64 KiB feed entry. */
export const MODEL_CHUNK_BYTES = 32 * 1024;
/** Tiny models only: a release lives in the feed, whose retention per origin is 16 MiB by default. */
export const MAX_RELEASE_BYTES = 4 * 1024 * 1024;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const chunkBodySchema = z.strictObject({
  model: hex64,
  index: z.number().int().min(0).max(Math.ceil(MAX_RELEASE_BYTES / MODEL_CHUNK_BYTES)),
  data: z.base64().max(Math.ceil(MODEL_CHUNK_BYTES / 3) * 4),
});
const releaseBodySchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  version: z.string().max(64),
  sha256: hex64,
  size: z.number().int().min(1).max(MAX_RELEASE_BYTES),
  manifest: z.record(z.string(), z.unknown()),
  chunks: z.array(z.strictObject({ seq: z.number().int().min(1), sha256: hex64, bytes: z.number().int().min(1).max(MODEL_CHUNK_BYTES) })).min(1),
});

export type ModelChunkBody = z.infer<typeof chunkBodySchema>;
export type ModelReleaseBody = z.infer<typeof releaseBodySchema>;

export interface ParsedRelease {
  readonly body: ModelReleaseBody;
  readonly manifest: ModelManifest;
}

function invalid(message: string, hint = 'the publisher must publish the model again (`apiary models publish`)'): ApiaryError {
  return new ApiaryError(ErrorCodes.MODEL_UPDATE_INVALID, message, { hint });
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Cuts a model file into chunk bodies, in order. */
export function chunkModel(bytes: Uint8Array): ModelChunkBody[] {
  if (bytes.length === 0 || bytes.length > MAX_RELEASE_BYTES) {
    throw invalid(`a model of ${bytes.length} bytes cannot be published over the mesh (1 byte to ${MAX_RELEASE_BYTES / 1024 / 1024} MiB)`, 'install larger models by hand with `apiary models install`');
  }
  const model = sha256Hex(bytes);
  const chunks: ModelChunkBody[] = [];
  for (let offset = 0, index = 0; offset < bytes.length; offset += MODEL_CHUNK_BYTES, index++) {
    chunks.push({ model, index, data: Buffer.from(bytes.subarray(offset, offset + MODEL_CHUNK_BYTES)).toString('base64') });
  }
  return chunks;
}

/** The release body for chunks appended at `seqs` (same order as `chunkModel` gave them). */
export function releaseBody(manifestJson: Record<string, unknown>, manifest: ModelManifest, bytes: Uint8Array, seqs: readonly number[]): ModelReleaseBody {
  const chunks = seqs.map((seq, i) => {
    const part = bytes.subarray(i * MODEL_CHUNK_BYTES, (i + 1) * MODEL_CHUNK_BYTES);
    return { seq, sha256: sha256Hex(part), bytes: part.length };
  });
  return { name: manifest.name, version: manifest.version, sha256: manifest.sha256, size: bytes.length, manifest: manifestJson, chunks };
}

/** Checks a release body from the network: shape, and that it agrees with the manifest it carries. */
export function parseRelease(body: unknown, source: string): ParsedRelease {
  const parsed = releaseBodySchema.safeParse(body);
  if (!parsed.success) {
    throw invalid(`${source} is not a model release: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  }
  const release = parsed.data;
  const manifest = parseManifest(release.manifest, `${source} manifest`);
  if (manifest.name !== release.name || manifest.version !== release.version || manifest.sha256 !== release.sha256) {
    throw invalid(`${source} names ${release.name} ${release.version} (${release.sha256.slice(0, 12)}…), but its manifest says ${manifest.name} ${manifest.version} (${manifest.sha256.slice(0, 12)}…)`);
  }
  const total = release.chunks.reduce((sum, c) => sum + c.bytes, 0);
  if (total !== release.size || release.chunks.length !== Math.ceil(release.size / MODEL_CHUNK_BYTES)) {
    throw invalid(`${source}: ${release.chunks.length} chunks of ${total} bytes do not make a file of ${release.size} bytes`);
  }
  return { body: release, manifest };
}

/**
 * Puts the model file back together from its chunk entries, checking each
 * chunk against the release and the whole against the manifest's sha256.
 * `readChunk(seq)` returns the body of the publisher's entry at `seq`, or
 * undefined if this node does not hold it (dropped by retention).
 */
export async function assembleModel(release: ModelReleaseBody, readChunk: (seq: number) => Promise<{ type: string; body: unknown } | undefined>): Promise<Uint8Array> {
  const out = new Uint8Array(release.size);
  let offset = 0;
  for (const [index, ref] of release.chunks.entries()) {
    const entry = await readChunk(ref.seq);
    if (!entry) throw invalid(`chunk ${index} (entry #${ref.seq}) of ${release.name} ${release.version} is not held here: it was dropped by retention`);
    const chunk = entry.type === MODEL_CHUNK_TYPE ? chunkBodySchema.safeParse(entry.body) : undefined;
    if (!chunk?.success || chunk.data.model !== release.sha256 || chunk.data.index !== index) {
      throw invalid(`entry #${ref.seq} is not chunk ${index} of ${release.name} ${release.version}`);
    }
    const data = Buffer.from(chunk.data.data, 'base64');
    if (data.length !== ref.bytes || sha256Hex(data) !== ref.sha256) {
      throw invalid(`chunk ${index} (entry #${ref.seq}) of ${release.name} ${release.version} does not match its hash in the release`);
    }
    out.set(data, offset);
    offset += data.length;
  }
  if (sha256Hex(out) !== release.sha256) throw invalid(`the chunks of ${release.name} ${release.version} do not hash to the manifest's sha256`);
  return out;
}
