/**
 * A runtime release on disk. Like a Mender artifact, it is a plain tar whose
 * first member is the signed manifest, so the signature is checked before a
 * byte of the payload is unpacked:
 *
 *   apiary_<version>_<arch>.release   (POSIX tar, not compressed)
 *     release.json   the signed manifest (release-manifest.ts)
 *     app.tar.gz     the app tree, exactly what the .deb puts in /usr/lib/apiary
 *
 * The payload's sha256 and size are pinned by the manifest, and unpacking is
 * held to the signed file count and byte total; node-tar (isaacs/node-tar,
 * npm's own) refuses absolute paths, `..` and writes through symlinks.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import {
  MANIFEST_MEMBER, MAX_MANIFEST_BYTES, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_FILES, MAX_UNPACKED_BYTES, PAYLOAD_MEMBER, RELEASE_FORMAT,
  parseManifest, releaseInfoSchema, signManifest, type ReleaseInfo, type ReleaseManifest, type ReleaseSigner,
} from './release-manifest.js';

/** Written by the packager at the top of the app tree; read by `apiary update sign`. */
export const RELEASE_INFO_FILE = 'release-info.json';

/**
 * Read the archives 1 MiB at a time (node-tar's default is 16 MiB): a board
 * installs an update beside a running node in 512 MB of RAM. Measured on
 * the amd64 release (27 MiB, 5,591 files): peak RSS of the whole install
 * 253 MB with the default, 142 MB with this.
 */
const READ = { maxReadSize: 1024 * 1024 } as const;

const invalid = (message: string, hint = 'get the release file again: it is damaged or not an Apiary release') =>
  new ApiaryError(ErrorCodes.RELEASE_INVALID, message, { hint });

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The app tree `dir` as a payload: gzip'd tar, members relative to the tree, no owners or modes of the building machine beyond the mode bits. */
export async function packPayload(dir: string, out: string, level = 9): Promise<void> {
  const members = (await readdir(dir)).sort();
  if (!members.includes(RELEASE_INFO_FILE)) throw invalid(`${dir} has no ${RELEASE_INFO_FILE}: it is not a packaged app tree`, 'build one with `npm run package`');
  await tar.create({ gzip: { level }, file: out, cwd: dir, portable: true }, members);
}

interface PayloadFacts { info: ReleaseInfo; files: number; unpackedBytes: number }

/** Reads release-info.json out of a payload and counts what it would unpack to. */
async function payloadFacts(payload: string): Promise<PayloadFacts> {
  let infoText: string | undefined;
  let files = 0;
  let unpackedBytes = 0;
  await tar.list({
    ...READ,
    file: payload,
    onReadEntry: (entry) => {
      files += 1;
      unpackedBytes += entry.size;
      if (entry.path === RELEASE_INFO_FILE) {
        const parts: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => parts.push(chunk));
        entry.on('end', () => { infoText = Buffer.concat(parts).toString('utf8'); });
      }
    },
  });
  if (infoText === undefined) throw invalid(`${payload} has no ${RELEASE_INFO_FILE}: it is not a packaged app tree`, 'build one with `npm run package`');
  const parsed = releaseInfoSchema.safeParse(JSON.parse(infoText));
  if (!parsed.success) throw invalid(`${payload}: ${RELEASE_INFO_FILE} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { info: parsed.data, files, unpackedBytes };
}

export interface SignReleaseOptions {
  /** A payload made by `npm run package` (apiary-runtime_<version>_<arch>.tar.gz) or by packPayload. */
  readonly payload: string;
  readonly signer: ReleaseSigner;
  readonly out: string;
  readonly notes?: string;
  readonly now?: Date;
}

/** Signs a payload into a release file (written to a temporary name, then renamed). */
export async function signRelease(o: SignReleaseOptions): Promise<ReleaseManifest> {
  const { size } = await stat(o.payload);
  if (size > MAX_PAYLOAD_BYTES) throw invalid(`${o.payload} is ${size} bytes; a release payload holds at most ${MAX_PAYLOAD_BYTES}`);
  const facts = await payloadFacts(o.payload);
  const manifest = signManifest({
    format: RELEASE_FORMAT,
    ...facts.info,
    payload: { file: PAYLOAD_MEMBER, sha256: await sha256File(o.payload), size, unpackedBytes: facts.unpackedBytes, files: facts.files },
    created: (o.now ?? new Date()).toISOString(),
    ...(o.notes === undefined ? {} : { notes: o.notes }),
  }, o.signer);
  const work = await mkdtemp(path.join(path.dirname(path.resolve(o.out)), '.apiary-sign-'));
  try {
    await writeFile(path.join(work, MANIFEST_MEMBER), `${JSON.stringify(manifest, null, 2)}\n`);
    await copyFile(o.payload, path.join(work, PAYLOAD_MEMBER));
    const tmp = `${o.out}.tmp`;
    await tar.create({ file: tmp, cwd: work, portable: true }, [MANIFEST_MEMBER, PAYLOAD_MEMBER]);
    await rename(tmp, o.out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return manifest;
}

/**
 * The manifest of a release file, its shape checked (not yet its signature:
 * release-manifest.ts verifyManifest). Refuses anything but exactly
 * release.json then app.tar.gz, as regular files of bounded size.
 */
export async function readReleaseManifest(file: string): Promise<ReleaseManifest> {
  if (!existsSync(file)) throw new ApiaryError(ErrorCodes.RELEASE_INVALID, `${file} does not exist`, { hint: 'give the path of an apiary_<version>_<arch>.release file' });
  const members: { path: string; type: string; size: number }[] = [];
  let manifestText: string | undefined;
  try {
    await tar.list({
      ...READ,
      file,
      strict: true,
      onReadEntry: (entry) => {
        members.push({ path: entry.path, type: entry.type, size: entry.size });
        if (members.length === 1 && entry.path === MANIFEST_MEMBER && entry.type === 'File' && entry.size <= MAX_MANIFEST_BYTES) {
          const parts: Buffer[] = [];
          entry.on('data', (chunk: Buffer) => parts.push(chunk));
          entry.on('end', () => { manifestText = Buffer.concat(parts).toString('utf8'); });
        }
      },
    });
  } catch (err) {
    throw invalid(`${file} is not a readable tar file: ${(err as Error).message}`);
  }
  const shape = members.map((m) => `${m.path} (${m.type}, ${m.size} bytes)`).join(', ');
  const [first, second] = members;
  if (members.length !== 2 || first?.path !== MANIFEST_MEMBER || second?.path !== PAYLOAD_MEMBER || second.type !== 'File' || manifestText === undefined) {
    throw invalid(`${file} is not an Apiary runtime release: expected ${MANIFEST_MEMBER} (at most ${MAX_MANIFEST_BYTES} bytes) then ${PAYLOAD_MEMBER}, found ${shape || 'nothing'}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(manifestText);
  } catch (err) {
    throw invalid(`${file}: ${MANIFEST_MEMBER} is not JSON: ${(err as Error).message}`);
  }
  const manifest = parseManifest(json, file);
  if (second.size !== manifest.payload.size) throw invalid(`${file}: ${PAYLOAD_MEMBER} is ${second.size} bytes, but the manifest pins ${manifest.payload.size}`);
  return manifest;
}

/**
 * Takes app.tar.gz out of a (verified) release file into `dir` and checks it
 * against the manifest's sha256; returns its path.
 */
export async function extractPayload(file: string, manifest: ReleaseManifest, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await tar.extract({
    ...READ,
    file, cwd: dir, strict: true, preserveOwner: false,
    filter: (p, entry) => p === PAYLOAD_MEMBER && 'size' in entry && entry.size === manifest.payload.size,
  });
  const payload = path.join(dir, PAYLOAD_MEMBER);
  if (!existsSync(payload)) throw invalid(`${file}: ${PAYLOAD_MEMBER} could not be read out of the release`);
  const sha256 = await sha256File(payload);
  if (sha256 !== manifest.payload.sha256) {
    throw invalid(`${file}: ${PAYLOAD_MEMBER} hashes to ${sha256.slice(0, 12)}…, but the signed manifest pins ${manifest.payload.sha256.slice(0, 12)}…: the file was changed or damaged`);
  }
  return payload;
}

export interface UnpackOptions {
  /** Owner of what is written (root installing for the service user); default: whoever runs this. */
  readonly uid?: number;
  readonly gid?: number;
}

/**
 * Unpacks a checked payload into `dest` (which must not exist yet), held to
 * the manifest's signed file count and byte total, regular files, folders
 * and links that stay inside the tree only. Then checks that the tree is
 * the release the manifest names.
 */
export async function unpackPayload(payload: string, manifest: ReleaseManifest, dest: string, options: UnpackOptions = {}): Promise<void> {
  await mkdir(dest, { recursive: false });
  const problems: string[] = [];
  let files = 0;
  let bytes = 0;
  const root = path.resolve(dest);
  await tar.extract({
    ...READ,
    file: payload, cwd: dest, strict: true, preserveOwner: false, noMtime: true,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
    filter: (p, entry) => {
      if (!('type' in entry)) return false;
      files += 1;
      bytes += entry.size;
      if (files > Math.min(manifest.payload.files, MAX_PAYLOAD_FILES) || bytes > Math.min(manifest.payload.unpackedBytes, MAX_UNPACKED_BYTES)) {
        if (problems.length === 0) problems.push(`more than the ${manifest.payload.files} files / ${manifest.payload.unpackedBytes} bytes the manifest declares`);
        return false;
      }
      if (entry.type === 'SymbolicLink') {
        const target = path.resolve(root, path.dirname(p), entry.linkpath ?? '');
        if (target !== root && !target.startsWith(`${root}${path.sep}`)) {
          problems.push(`${p} links outside the release (${entry.linkpath ?? ''})`);
          return false;
        }
        return true;
      }
      if (entry.type !== 'File' && entry.type !== 'Directory') {
        problems.push(`${p} is a ${entry.type}; a release holds files, folders and links only`);
        return false;
      }
      return true;
    },
  });
  if (problems.length > 0) throw invalid(`the payload of ${manifest.version} is refused: ${problems.slice(0, 5).join('; ')}`);
  const infoFile = path.join(dest, RELEASE_INFO_FILE);
  const info = existsSync(infoFile) ? releaseInfoSchema.safeParse(JSON.parse(await readFile(infoFile, 'utf8'))) : undefined;
  const pkg = existsSync(path.join(dest, 'package.json')) ? (JSON.parse(await readFile(path.join(dest, 'package.json'), 'utf8')) as { version?: unknown }) : {};
  if (!info?.success || info.data.version !== manifest.version || info.data.arch !== manifest.arch || pkg.version !== manifest.version || !existsSync(path.join(dest, 'dist', 'apiary.mjs'))) {
    throw invalid(`the payload of ${manifest.version} is not that release: its ${RELEASE_INFO_FILE}, package.json or dist/apiary.mjs is missing or names another version`);
  }
}
