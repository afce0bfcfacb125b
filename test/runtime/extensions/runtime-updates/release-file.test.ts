/**
 * Runtime release files: signed, read, checked and unpacked on real files,
 * with node-tar writing the archives an attacker or a damaged SD card would.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../../../runtime/identity/identity.js';
import { extractPayload, packPayload, readReleaseManifest, signRelease, unpackPayload } from '../../../../runtime/extensions/runtime-updates/release-file.js';
import { checkCompatible, verifyManifest, type ReleaseManifest, type ReleaseTrust, type RunningRuntime } from '../../../../runtime/extensions/runtime-updates/release-manifest.js';
import { expectRefusal } from '../../../support/refusal.js';

let dir: string;
let owner: NodeIdentity;
let trust: ReleaseTrust;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-release-'));
  owner = (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity;
  trust = { owners: new Map([[owner.publicKey, 'the owner']]), revoked: new Set() };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A small app tree shaped like the packaged one. */
async function appTree(name: string, version: string, extra: (root: string) => Promise<void> = () => Promise.resolve()): Promise<string> {
  const root = path.join(dir, name);
  await mkdir(path.join(root, 'dist'), { recursive: true });
  await writeFile(path.join(root, 'package.json'), JSON.stringify({ name: 'apiary', version }));
  await writeFile(path.join(root, 'release-info.json'), JSON.stringify({ name: 'apiary', version, arch: 'x64', node: '>=20.19', configVersion: 1 }));
  await writeFile(path.join(root, 'dist', 'apiary.mjs'), `console.log('apiary ${version}');\n`);
  await extra(root);
  return root;
}

async function release(version: string, extra?: (root: string) => Promise<void>, signer: NodeIdentity = owner): Promise<{ file: string; manifest: ReleaseManifest }> {
  const root = await appTree(`app-${version}`, version, extra);
  const payload = path.join(dir, `payload-${version}.tar.gz`);
  await packPayload(root, payload, 1);
  const file = path.join(dir, `apiary_${version}.release`);
  const manifest = await signRelease({ payload, signer, out: file });
  return { file, manifest };
}

const running: RunningRuntime = { version: '0.1.0', arch: 'x64', nodeVersion: '20.19.0', configVersion: 1 };

describe('a release file', () => {
  it('round-trips: signed, read back, verified, unpacked into the tree it was made from', async () => {
    const { file, manifest } = await release('0.2.0');
    const read = await readReleaseManifest(file);
    expect(read).toEqual(manifest);
    expect(read).toMatchObject({ version: '0.2.0', arch: 'x64', configVersion: 1, payload: { file: 'app.tar.gz', files: 4 } }); // dist/, dist/apiary.mjs, package.json, release-info.json
    expect(verifyManifest(read, trust, file)).toEqual({ publicKey: owner.publicKey, name: 'the owner' });
    const payload = await extractPayload(file, read, path.join(dir, 'scratch'));
    await unpackPayload(payload, read, path.join(dir, 'slot'));
    expect(await readFile(path.join(dir, 'slot', 'dist', 'apiary.mjs'), 'utf8')).toContain('apiary 0.2.0');
  });

  it('is refused when the payload was changed after signing', async () => {
    const { file, manifest } = await release('0.2.0');
    // Re-pack the outer tar with another payload of the same size: only the hash can tell.
    const work = path.join(dir, 'forge');
    await mkdir(work);
    await tar.extract({ file, cwd: work });
    const bytes = await readFile(path.join(work, 'app.tar.gz'));
    const at = bytes.length - 20;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    await writeFile(path.join(work, 'app.tar.gz'), bytes);
    const forged = path.join(dir, 'forged.release');
    await tar.create({ file: forged, cwd: work }, ['release.json', 'app.tar.gz']);
    await expectRefusal(extractPayload(forged, await readReleaseManifest(forged), path.join(dir, 'scratch')), ErrorCodes.RELEASE_INVALID, 'signed manifest pins');
    expect(manifest.payload.size).toBe(bytes.length);
  });

  it('is refused when the manifest was changed after signing, or signed by a stranger or a revoked key', async () => {
    const { file, manifest } = await release('0.2.0');
    const changed = { ...manifest, version: '9.9.9' };
    await expectRefusal(() => verifyManifest(changed, trust, file), ErrorCodes.RELEASE_UNTRUSTED, 'does not verify');
    const stranger = (await loadOrCreateKeyFile(path.join(dir, 'stranger.json'))).identity;
    const theirs = await release('0.3.0', undefined, stranger);
    await expectRefusal(() => verifyManifest(theirs.manifest, trust, theirs.file), ErrorCodes.RELEASE_UNTRUSTED, 'does not trust');
    await expectRefusal(() => verifyManifest(manifest, { ...trust, revoked: new Set([owner.publicKey]) }, file), ErrorCodes.RELEASE_UNTRUSTED, 'revoked');
  });

  it('must be exactly release.json then app.tar.gz', async () => {
    const { file } = await release('0.2.0');
    const work = path.join(dir, 'shape');
    await mkdir(work);
    await tar.extract({ file, cwd: work });
    await writeFile(path.join(work, 'extra'), 'x');
    for (const [name, members] of [['reversed', ['app.tar.gz', 'release.json']], ['extra', ['release.json', 'app.tar.gz', 'extra']], ['alone', ['release.json']]] as const) {
      const out = path.join(dir, `${name}.release`);
      await tar.create({ file: out, cwd: work }, [...members]);
      await expectRefusal(readReleaseManifest(out), ErrorCodes.RELEASE_INVALID, 'expected release.json');
    }
    await writeFile(path.join(dir, 'junk.release'), 'not a tar at all, just some text that is long enough to be read as a header block maybe');
    await expectRefusal(readReleaseManifest(path.join(dir, 'junk.release')), ErrorCodes.RELEASE_INVALID);
    await expectRefusal(readReleaseManifest(path.join(dir, 'missing.release')), ErrorCodes.RELEASE_INVALID, 'does not exist');
  });

  it('names the wrong fields of a damaged manifest', async () => {
    const { file } = await release('0.2.0');
    const work = path.join(dir, 'damaged');
    await mkdir(work);
    await tar.extract({ file, cwd: work });
    const json = JSON.parse(await readFile(path.join(work, 'release.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(work, 'release.json'), JSON.stringify({ ...json, arch: 'mips', configVersion: 0 }));
    const out = path.join(dir, 'damaged.release');
    await tar.create({ file: out, cwd: work }, ['release.json', 'app.tar.gz']);
    const err = await readReleaseManifest(out).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.RELEASE_INVALID });
    expect(String((err as Error).message)).toMatch(/arch:.*configVersion:|configVersion:.*arch:/);
  });
});

describe('unpacking a payload', () => {
  it('refuses a link out of the release, even in a payload its owner signed', async () => {
    const { file, manifest } = await release('0.2.0', async (root) => {
      await symlink('/etc/passwd', path.join(root, 'dist', 'escape'));
    });
    const payload = await extractPayload(file, manifest, path.join(dir, 'scratch'));
    await expectRefusal(unpackPayload(payload, manifest, path.join(dir, 'slot')), ErrorCodes.RELEASE_INVALID, 'links outside the release');
    expect(existsSync(path.join(dir, 'slot', 'dist', 'escape'))).toBe(false);
  });

  it('refuses a payload that names another version than its manifest', async () => {
    const { file, manifest } = await release('0.2.0', async (root) => {
      await writeFile(path.join(root, 'package.json'), JSON.stringify({ name: 'apiary', version: '0.1.5' }));
    });
    const payload = await extractPayload(file, manifest, path.join(dir, 'scratch'));
    await expectRefusal(unpackPayload(payload, manifest, path.join(dir, 'slot')), ErrorCodes.RELEASE_INVALID, 'not that release');
  });

  it('holds the payload to the file count its manifest declares', async () => {
    const { file, manifest } = await release('0.2.0');
    const payload = await extractPayload(file, manifest, path.join(dir, 'scratch'));
    const fewer = { ...manifest, payload: { ...manifest.payload, files: 2 } };
    await expectRefusal(unpackPayload(payload, fewer, path.join(dir, 'slot')), ErrorCodes.RELEASE_INVALID, 'more than the 2 files');
  });
});

describe('whether a release may be installed here', () => {
  it('refuses another architecture, an unsupported Node.js, an unreadable config format; a downgrade only without force', async () => {
    const { manifest } = await release('0.2.0');
    expect(() => checkCompatible(manifest, running, false, 'r')).not.toThrow();
    await expectRefusal(() => checkCompatible(manifest, { ...running, arch: 'arm64' }, true, 'r'), ErrorCodes.RELEASE_INCOMPATIBLE, 'built for x64');
    await expectRefusal(() => checkCompatible(manifest, { ...running, nodeVersion: '18.20.0' }, true, 'r'), ErrorCodes.RELEASE_INCOMPATIBLE, 'Node.js');
    await expectRefusal(() => checkCompatible(manifest, { ...running, configVersion: 2 }, true, 'r'), ErrorCodes.RELEASE_INCOMPATIBLE, 'config format');
    await expectRefusal(() => checkCompatible(manifest, { ...running, version: '0.3.0' }, false, 'r'), ErrorCodes.RELEASE_DOWNGRADE, 'older than the running 0.3.0');
    await expectRefusal(() => checkCompatible(manifest, { ...running, version: '0.2.0' }, false, 'r'), ErrorCodes.RELEASE_DOWNGRADE, 'already running');
    expect(() => checkCompatible(manifest, { ...running, version: '0.3.0' }, true, 'r')).not.toThrow();
  });
});
