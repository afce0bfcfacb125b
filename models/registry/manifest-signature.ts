/**
 * Who vouches for a model. A manifest carries a detached signature by an
 * owner's Ed25519 key over the manifest itself; the manifest pins the model
 * file by sha256, so the signature covers the model bytes too.
 *
 * The trust rule: models shipped inside the package are trusted like the
 * code beside them (no signature, but their hash must match). Any other
 * model (config `models.dir`, `apiary models install`) loads only if it is
 * signed by an owner this node trusts for models (its own owner, or one in
 * models.trust.owners; trusting an owner's data in mesh.trust is not enough)
 * whose key is not revoked, and its hash matches.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson } from '../../runtime/canonical-json.js';
import { ApiaryError, ErrorCodes, isApiaryError } from '../../runtime/errors.js';
import { verifySignature } from '../../runtime/identity/identity.js';
import { packagePath } from '../../runtime/package-root.js';
import { loadManifestWithJson, verifyModelFile, MANIFEST_FILE, type ModelManifest, type VerifiedModelFile } from './manifest.js';

/** Prefix of the signed bytes, so a manifest signature can never pass for any other signed message. */
export const MANIFEST_SIGNATURE_DOMAIN = 'apiary-model-manifest-v1\n';
const SIGN_HINT = 'sign it with `apiary models sign --key-file owner.json <dir>`';

export interface ModelTrust {
  /** Trusted owner public keys (base64url) -> a name to show. */
  readonly owners: ReadonlyMap<string, string>;
  /** Keys refused whatever else says. */
  readonly revoked: ReadonlySet<string>;
  /** This node's own owner key: always trusted for models, and may reset another signer's version. */
  readonly own?: string;
  /** Model name -> the one signer accepted for it (models.trust.signers; else the first that installed it). */
  readonly signers?: ReadonlyMap<string, string>;
}

export const NO_TRUST: ModelTrust = { owners: new Map(), revoked: new Set() };

export interface ManifestSigner {
  readonly publicKey: string;
  sign(data: Uint8Array): Uint8Array;
}


function asObject(json: unknown, source: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ApiaryError(ErrorCodes.MODEL_MANIFEST_INVALID, `${source} is not a JSON object`);
  }
  return json as Record<string, unknown>;
}

function withoutSignature(json: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(json).filter(([key]) => key !== 'signature'));
}

/** The bytes an owner signs: the domain prefix, then the canonical manifest without its `signature`. */
export function manifestSigningBytes(json: unknown, source = MANIFEST_FILE): Buffer {
  const rest = withoutSignature(asObject(json, source));
  return Buffer.from(MANIFEST_SIGNATURE_DOMAIN + canonicalJson(rest), 'utf8');
}

/** The manifest JSON with a fresh signature by `signer` (any old signature replaced). */
export function signManifestJson(json: unknown, signer: ManifestSigner): Record<string, unknown> {
  const rest = withoutSignature(asObject(json, MANIFEST_FILE));
  const sig = Buffer.from(signer.sign(manifestSigningBytes(rest))).toString('base64url');
  return { ...rest, signature: { owner: signer.publicKey, sig } };
}

/** Checks the signature and returns the signer's public key; refuses a missing or broken one. */
export function verifyManifestSignature(json: unknown, source: string): string {
  const signature = asObject(json, source).signature as { owner?: unknown; sig?: unknown } | undefined;
  if (signature === undefined) {
    throw new ApiaryError(ErrorCodes.MODEL_SIGNATURE_MISSING, `${source} is not signed, and only models shipped with Apiary load without a signature`, {
      hint: `${SIGN_HINT}, with an owner key this node trusts`,
    });
  }
  const { owner, sig } = signature;
  const ok = typeof owner === 'string' && typeof sig === 'string' &&
    verifySignature(owner, manifestSigningBytes(json, source), Buffer.from(sig, 'base64url'));
  if (!ok) {
    throw new ApiaryError(ErrorCodes.MODEL_SIGNATURE_INVALID, `the signature in ${source} does not verify: the manifest was changed after signing, or the signature is damaged`, {
      hint: `get the model again from its owner; if you changed it yourself, ${SIGN_HINT}`,
    });
  }
  return owner;
}

/** The trusted name of `owner`; refuses a revoked or unknown key. */
export function trustedSignerName(owner: string, trust: ModelTrust, source: string): string {
  if (trust.revoked.has(owner)) {
    throw new ApiaryError(ErrorCodes.MODEL_SIGNER_UNTRUSTED, `${source} is signed by owner ${owner}, whose key is revoked (mesh.trust.revoked)`, {
      hint: 'ask the owner for a model signed with their new key',
    });
  }
  const name = trust.owners.get(owner);
  if (name === undefined) {
    throw new ApiaryError(ErrorCodes.MODEL_SIGNER_UNTRUSTED, `${source} is signed by owner ${owner}, whom this node does not trust`, {
      hint: `if you trust that owner's models (not only its data), add the key to models.trust.owners in the config: { name: <who>, publicKey: ${owner} }`,
    });
  }
  return name;
}

/** Whether `dir` lies inside the package's own models/ folder (links resolved). */
export async function isShippedModelDir(dir: string): Promise<boolean> {
  const resolve = (p: string) => realpath(p).catch(() => path.resolve(p));
  const rel = path.relative(await resolve(packagePath('models')), await resolve(dir));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export interface ModelVerdict {
  readonly dir: string;
  readonly manifest: ModelManifest;
  /** The manifest exactly as read (with its signature), for passing on unchanged. */
  readonly json: Record<string, unknown>;
  readonly file: VerifiedModelFile;
  /** Shipped with Apiary: trusted with the code, no signature needed. */
  readonly shipped: boolean;
  /** The signing owner, for models from elsewhere. */
  readonly signer?: { readonly publicKey: string; readonly name: string };
}

/** For a model from elsewhere, rebuilding the shipped models (the generic hint) cannot help. */
const NOT_SHIPPED_FILE_HINT = 'the model file is not the one the manifest names (damaged, or replaced after signing): get the model folder again from its signer; ' +
  'if you changed the model yourself, put its new sha256 in manifest.json and sign it again with `apiary models sign`';

/** One refusal that names every reason found, each with its own fix line. */
export function combineRefusals(dir: string, problems: readonly ApiaryError[]): ApiaryError {
  const [first] = problems;
  if (first === undefined) throw new RangeError('no refusal to combine');
  if (problems.length === 1) return first;
  return new ApiaryError(first.code, `${dir} is refused for ${problems.length} reasons:\n${problems.map((p) => `  - ${p.code}: ${p.message}`).join('\n')}`, {
    hint: [...new Set(problems.flatMap((p) => (p.hint ? [p.hint] : [])))].join('\n  fix: '),
  });
}

/**
 * Everything a node checks before it runs a model: the manifest, then (unless
 * shipped) the signature and the signer's trust, and the model file's hash.
 * Throws an ApiaryError naming every reason a model is refused (a tampered
 * unsigned copy: both the missing signature and the hash mismatch).
 */
export async function verifyModelDir(dir: string, trust: ModelTrust): Promise<ModelVerdict> {
  const { manifest, json, file: source } = await loadManifestWithJson(dir);
  const shipped = await isShippedModelDir(dir);
  const problems: ApiaryError[] = [];
  const check = async <T>(step: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await step();
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      problems.push(err);
      return undefined;
    }
  };
  let signer: ModelVerdict['signer'];
  if (!shipped) {
    const publicKey = await check(() => verifyManifestSignature(json, source));
    const name = publicKey === undefined ? undefined : await check(() => trustedSignerName(publicKey, trust, source));
    if (publicKey !== undefined && name !== undefined) signer = { publicKey, name };
  }
  const file = await check(() => verifyModelFile(dir, manifest).catch((err: unknown) => {
    const fileProblem = isApiaryError(err, ErrorCodes.MODEL_HASH_MISMATCH) || isApiaryError(err, ErrorCodes.MODEL_NOT_FOUND);
    throw shipped || !fileProblem ? err : new ApiaryError(err.code, err.message, { hint: NOT_SHIPPED_FILE_HINT, cause: err });
  }));
  if (problems.length > 0 || file === undefined) throw combineRefusals(dir, problems);
  return { dir, manifest, json: asObject(json, source), file, shipped, ...(signer ? { signer } : {}) };
}
