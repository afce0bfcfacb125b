import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { IDENTITY_FILE, loadOrCreateIdentity, nodeIdFromPublicKey, readIdentity, verifySignature } from '../../../runtime/identity/identity.js';

describe('identity', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-id-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('makes an Ed25519 key on first start, keeps it 0600, and derives a stable short id', async () => {
    const dataDir = path.join(dir, 'data');
    const first = await loadOrCreateIdentity(dataDir);
    expect(first.created).toBe(true);
    expect(first.identity.nodeId).toMatch(/^[a-z2-7]{12}$/);
    expect(Buffer.from(first.identity.publicKey, 'base64url')).toHaveLength(32);
    expect((await stat(path.join(dataDir, IDENTITY_FILE))).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateIdentity(dataDir);
    expect(second.created).toBe(false);
    expect(second.identity.nodeId).toBe(first.identity.nodeId);
    expect(nodeIdFromPublicKey(Buffer.from(first.identity.publicKey, 'base64url'))).toBe(first.identity.nodeId);
  });

  it('signs with the private key; signatures verify only for the same data and key', async () => {
    const { identity } = await loadOrCreateIdentity(dir);
    const data = Buffer.from('hive 3690 is swarming');
    const signature = identity.sign(data);
    expect(verifySignature(identity.publicKey, data, signature)).toBe(true);
    expect(verifySignature(identity.publicKey, Buffer.from('hive 3690 is calm'), signature)).toBe(false);
    const other = await loadOrCreateIdentity(path.join(dir, 'other'));
    expect(verifySignature(other.identity.publicKey, data, signature)).toBe(false);
  });

  it('refuses a damaged or tampered identity file instead of silently replacing it', async () => {
    await loadOrCreateIdentity(dir);
    const file = path.join(dir, IDENTITY_FILE);
    const stored = JSON.parse(await readFile(file, 'utf8')) as { nodeId: string };
    await writeFile(file, JSON.stringify({ ...stored, nodeId: 'aaaaaaaaaaaa' }));
    await expect(readIdentity(dir)).rejects.toMatchObject({ code: ErrorCodes.IDENTITY_INVALID });
    await writeFile(file, '{ not json');
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: ErrorCodes.IDENTITY_INVALID });
  });

  it('reads nothing where there is no identity yet', async () => {
    expect(await readIdentity(dir)).toBeUndefined();
  });
});
