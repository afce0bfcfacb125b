/**
 * What a runtime release says about itself, and who vouches for it. The
 * manifest (`release.json`, the first member of a release file) names the
 * version, the board architecture, the Node.js and config format it needs,
 * and pins the app payload by sha256; an owner's Ed25519 signature covers it
 * all, the same way model manifests are signed (models/registry/manifest-signature.ts)
 * but under its own domain prefix, so neither signature can pass for the other.
 *
 * Trust: a release runs code on the board, so only this node's own owner and
 * the owners listed in updates.trust.owners may sign one; a key in
 * mesh.trust.revoked is refused whatever else says.
 */
import semver from 'semver';
import { z } from 'zod';
import { canonicalJson } from '../../canonical-json.js';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { verifySignature } from '../../identity/identity.js';

export const RELEASE_FORMAT = 'apiary-runtime-release-v1';
/** Prefix of the signed bytes (see the model manifest's MANIFEST_SIGNATURE_DOMAIN). */
export const RELEASE_SIGNATURE_DOMAIN = 'apiary-runtime-release-v1\n';
export const MANIFEST_MEMBER = 'release.json';
export const PAYLOAD_MEMBER = 'app.tar.gz';
/** A release.json larger than this is not one (it is a few hundred bytes). */
export const MAX_MANIFEST_BYTES = 64 * 1024;
/** The payload of the arm64 .deb is about 13 MiB; room for growth, not for a disk-filling file. */
export const MAX_PAYLOAD_BYTES = 96 * 1024 * 1024;
/** Unpacked, the app is about 65 MiB; a release that claims more is refused before it is unpacked. */
export const MAX_UNPACKED_BYTES = 384 * 1024 * 1024;
export const MAX_PAYLOAD_FILES = 50_000;

/** Node's process.arch for each board the .deb is built for. */
export const RELEASE_ARCHES = ['arm64', 'x64'] as const;
export type ReleaseArch = (typeof RELEASE_ARCHES)[number];

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a sha256 in hex' });
const publicKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'expected a base64url Ed25519 public key' });

/** What the packager writes beside the app (release-info.json): the facts a signer copies into the manifest. */
export const releaseInfoSchema = z.strictObject({
  name: z.literal('apiary'),
  version: z.string().max(64).refine((v) => semver.valid(v) === v, { error: 'expected a semantic version such as 0.2.0' }),
  arch: z.enum(RELEASE_ARCHES),
  node: z.string().max(64).refine((r) => semver.validRange(r) !== null, { error: 'expected a Node.js version range such as >=20.19' }),
  configVersion: z.number().int().min(1).max(10_000),
});
export type ReleaseInfo = z.infer<typeof releaseInfoSchema>;

export const releaseManifestSchema = z.strictObject({
  format: z.literal(RELEASE_FORMAT),
  ...releaseInfoSchema.shape,
  payload: z.strictObject({
    file: z.literal(PAYLOAD_MEMBER),
    sha256: hex64,
    size: z.number().int().min(1).max(MAX_PAYLOAD_BYTES),
    unpackedBytes: z.number().int().min(1).max(MAX_UNPACKED_BYTES),
    files: z.number().int().min(1).max(MAX_PAYLOAD_FILES),
  }),
  created: z.iso.datetime(),
  notes: z.string().max(2000).optional(),
  signature: z.strictObject({ owner: publicKey, sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/, { error: 'expected a base64url Ed25519 signature' }) }),
});
export type ReleaseManifest = z.infer<typeof releaseManifestSchema>;
export type UnsignedManifest = Omit<ReleaseManifest, 'signature'>;

export interface ReleaseSigner {
  readonly publicKey: string;
  sign(data: Uint8Array): Uint8Array;
}

/** Who may sign runtime releases for this node. */
export interface ReleaseTrust {
  /** Owner public key -> a name to show. */
  readonly owners: ReadonlyMap<string, string>;
  readonly revoked: ReadonlySet<string>;
}

export function signingBytes(manifest: UnsignedManifest): Buffer {
  return Buffer.from(RELEASE_SIGNATURE_DOMAIN + canonicalJson(manifest), 'utf8');
}

export function signManifest(manifest: UnsignedManifest, signer: ReleaseSigner): ReleaseManifest {
  const sig = Buffer.from(signer.sign(signingBytes(manifest))).toString('base64url');
  return { ...manifest, signature: { owner: signer.publicKey, sig } };
}

/** Checks the shape of a release.json from anywhere (a file, the network); names the fields that are wrong. */
export function parseManifest(json: unknown, source: string): ReleaseManifest {
  const parsed = releaseManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'release.json'}: ${i.message}`);
    throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${source} is not an Apiary runtime release: ${problems.join('; ')}`, {
      hint: 'build releases with `npm run package` and sign them with `apiary update sign`',
    });
  }
  return parsed.data;
}

/** Verifies the signature and the signer's trust; returns the signer's name. */
export function verifyManifest(manifest: ReleaseManifest, trust: ReleaseTrust, source: string): { publicKey: string; name: string } {
  const { signature, ...rest } = manifest;
  if (!verifySignature(signature.owner, signingBytes(rest), Buffer.from(signature.sig, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.RELEASE_UNTRUSTED, `the signature of ${source} does not verify: the release was changed after it was signed, or the signature is damaged`, {
      hint: 'get the release again from its owner',
    });
  }
  if (trust.revoked.has(signature.owner)) {
    throw new ApiaryError(ErrorCodes.RELEASE_UNTRUSTED, `${source} is signed by owner ${signature.owner}, whose key is revoked (mesh.trust.revoked)`, {
      hint: 'ask the owner for a release signed with their new key',
    });
  }
  const name = trust.owners.get(signature.owner);
  if (name === undefined) {
    throw new ApiaryError(ErrorCodes.RELEASE_UNTRUSTED, `${source} is signed by owner ${signature.owner}, whom this node does not trust to update its runtime`, {
      hint: `only this node's owner may, and the owners in updates.trust.owners: add { name: <who>, publicKey: ${signature.owner} } there if you trust them with this board's code`,
    });
  }
  return { publicKey: signature.owner, name };
}

export interface RunningRuntime {
  readonly version: string;
  readonly arch: string;
  readonly nodeVersion: string;
  /** The config format version of the config file in use (its `version`, 1 when absent). */
  readonly configVersion: number;
}

/**
 * Whether this board can run the release, and whether it is an upgrade.
 * Everything but the version order is a hard refusal; a downgrade or a
 * reinstall passes only with `force`.
 */
export function checkCompatible(manifest: ReleaseManifest, running: RunningRuntime, force: boolean, source: string): void {
  const incompatible = (message: string, hint: string) => new ApiaryError(ErrorCodes.RELEASE_INCOMPATIBLE, `${source}: ${message}`, { hint });
  if (manifest.arch !== running.arch) {
    throw incompatible(`built for ${manifest.arch}, but this board is ${running.arch}`, `install the ${running.arch === 'arm64' ? 'arm64' : 'amd64'} release`);
  }
  if (!semver.satisfies(running.nodeVersion, manifest.node)) {
    throw incompatible(`needs Node.js ${manifest.node}, but this board has ${running.nodeVersion}`, 'upgrade the nodejs package first (apt install nodejs)');
  }
  if (manifest.configVersion < running.configVersion) {
    throw incompatible(`reads config format up to version ${manifest.configVersion}, but the config in use is version ${running.configVersion}`,
      'it could not read this config: install a newer release (or restore the config written for that version)');
  }
  if (!force && !semver.gt(manifest.version, running.version)) {
    const same = semver.eq(manifest.version, running.version);
    throw new ApiaryError(ErrorCodes.RELEASE_DOWNGRADE, `${source}: version ${manifest.version} is ${same ? 'the version already running' : `older than the running ${running.version}`}`, {
      hint: `pass --force to install it anyway${same ? '' : ' (a downgrade: its config format must still read this config)'}`,
    });
  }
}
