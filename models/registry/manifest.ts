/**
 * `manifest.json` sits beside every model file. It says what the model is,
 * how to feed it (feature order, units, normalisation), what its outputs mean,
 * how it was made and under which licence, and pins the model bytes by sha256
 * so a node never runs a file other than the one that was reviewed.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { ErrorCode } from '../../runtime/errors.js';

export const MANIFEST_FILE = 'manifest.json';
const REBUILD_HINT = 'reinstall the model or re-run `npm run models:build`';

const nonEmpty = z.string().trim().min(1);
const finite = z.number().refine(Number.isFinite, 'expected a finite number');

/** Relative, forward-slash path that stays inside the model directory. */
const modelFilePath = nonEmpty.refine(
  (p) => !path.isAbsolute(p) && !p.includes('\\') && !p.split('/').includes('..'),
  'must be a relative path inside the model directory (no "..", no leading "/", no "\\")',
);

const uniqueNames = (items: readonly string[]) => new Set(items).size === items.length;

const featureSchema = z.object({
  name: nonEmpty,
  unit: z.string(),
  description: nonEmpty,
  mean: finite,
  std: finite.refine((s) => s > 0, 'std must be > 0 (it divides the feature)'),
});

export const manifestSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and "-", e.g. "hive-sound"'),
  version: z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, 'use a semantic version such as "0.1.0"'),
  description: nonEmpty,
  file: modelFilePath,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits (sha256 of the model file)'),
  inputs: z
    .array(
      z.object({
        name: z.literal('features'),
        features: z
          .array(featureSchema)
          .min(1)
          .refine((fs) => uniqueNames(fs.map((f) => f.name)), 'feature names must be unique'),
      }),
    )
    .length(1, 'exactly one input tensor ("features") is supported'),
  outputs: z
    .array(
      z.object({
        name: z.literal('probabilities'),
        labels: z.array(nonEmpty).min(1).refine(uniqueNames, 'labels must be unique'),
      }),
    )
    .length(1, 'exactly one output tensor ("probabilities") is supported'),
  training: z.object({
    method: nonEmpty,
    data: nonEmpty,
    notes: nonEmpty,
    metrics: z.record(z.string(), finite).optional(),
  }),
  license: nonEmpty,
  authors: z.array(nonEmpty).min(1),
  /** The owner's Ed25519 signature over the rest of the manifest (see manifest-signature.ts); shipped models have none. */
  signature: z
    .strictObject({
      owner: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected the owner\'s Ed25519 public key, 43 base64url characters'),
      sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'expected an Ed25519 signature, 86 base64url characters'),
    })
    .optional(),
});

export type ModelManifest = z.infer<typeof manifestSchema>;
export type ManifestFeature = z.infer<typeof featureSchema>;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `inputs[0].features[2].std`, the way a person would look it up in the file. */
function fieldPath(issuePath: readonly PropertyKey[]): string {
  return issuePath.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  );
}

/** Validates a parsed manifest; `source` names the file in error messages. */
export function parseManifest(value: unknown, source: string): ModelManifest {
  const result = manifestSchema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `field "${fieldPath(i.path) || '(root)'}": ${i.message}`);
  return fail(ErrorCodes.MODEL_MANIFEST_INVALID, `${source} is invalid: ${issues.join('; ')}`, {
    hint: `fix the named field(s) in ${source} (see models/registry/manifest.ts for the schema), or ${REBUILD_HINT}`,
  });
}

/** Reads and validates `<dir>/manifest.json`. */
export async function loadManifest(dir: string): Promise<ModelManifest> {
  return (await loadManifestWithJson(dir)).manifest;
}

/** The validated manifest and the JSON it came from (the signature covers the JSON as written). */
export async function loadManifestWithJson(dir: string): Promise<{ manifest: ModelManifest; json: unknown; file: string }> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    return fail(ErrorCodes.MODEL_NOT_FOUND, `cannot read model manifest ${file}`, {
      hint: `check the model directory path, or ${REBUILD_HINT}`,
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    return fail(ErrorCodes.MODEL_MANIFEST_INVALID, `${file} is not valid JSON: ${(cause as Error).message}`, {
      hint: `fix the JSON syntax, or ${REBUILD_HINT}`,
      cause,
    });
  }
  return { manifest: parseManifest(json, file), json, file };
}

export interface VerifiedModelFile {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

/**
 * Reads the model file named by the manifest and refuses it unless its sha256
 * matches. Re-checks containment (after resolving symlinks) because a
 * manifest object may not have come through `loadManifest`.
 */
export async function verifyModelFile(dir: string, manifest: ModelManifest): Promise<VerifiedModelFile> {
  const rel = manifest.file;
  const escapes = (root: string, target: string) => {
    const r = path.relative(root, target);
    return r === '' || r.startsWith('..') || path.isAbsolute(r);
  };
  const root = path.resolve(dir);
  const target = path.resolve(root, rel);
  if (!modelFilePath.safeParse(rel).success || escapes(root, target)) {
    return fail(ErrorCodes.MODEL_MANIFEST_INVALID, `manifest "file" ${JSON.stringify(rel)} escapes the model directory ${root}`, {
      hint: `set "file" to a path inside ${root}, e.g. "model.onnx", or ${REBUILD_HINT}`,
    });
  }
  let realTarget: string;
  try {
    realTarget = await realpath(target);
  } catch (cause) {
    return fail(ErrorCodes.MODEL_NOT_FOUND, `model file ${target} (named by ${path.join(root, MANIFEST_FILE)}) is missing`, {
      hint: REBUILD_HINT,
      cause,
    });
  }
  if (escapes(await realpath(root), realTarget)) {
    return fail(ErrorCodes.MODEL_MANIFEST_INVALID, `model file ${target} resolves to ${realTarget}, outside ${root}`, {
      hint: `replace the link with the model file itself, or ${REBUILD_HINT}`,
    });
  }
  const bytes = new Uint8Array(await readFile(realTarget));
  const actual = sha256Hex(bytes);
  if (actual !== manifest.sha256) {
    return fail(
      ErrorCodes.MODEL_HASH_MISMATCH,
      `model file ${target} has sha256 ${actual}, but its manifest expects ${manifest.sha256}`,
      { hint: `the file is corrupt or was replaced: ${REBUILD_HINT}` },
    );
  }
  return { path: target, bytes, sha256: actual };
}

function fail(code: ErrorCode, message: string, options: { hint: string; cause?: unknown }): never {
  throw new ApiaryError(code, message, options);
}
