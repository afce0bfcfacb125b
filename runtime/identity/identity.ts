/**
 * The node's identity: an Ed25519 key pair made on first start and kept in
 * the data dir (mode 0600). The node id is derived from the public key, so it
 * is stable, short, and cannot be claimed by another key.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { ensureDir } from '../storage/data-dir.js';

export const IDENTITY_FILE = 'identity.json';
/** RFC 4648 base32 alphabet, lower-cased: safe in MQTT topics, file names and DNS labels. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** 12 base32 characters = 60 bits of the key's SHA-256: collisions are out of reach for any real mesh. */
const NODE_ID_LENGTH = 12;

export interface NodeIdentity {
  readonly nodeId: string;
  /** Raw 32-byte Ed25519 public key, base64url. */
  readonly publicKey: string;
  sign(data: Uint8Array): Buffer;
}

interface IdentityFile {
  version: 1;
  nodeId: string;
  publicKey: string;
  privateKeyPem: string;
  createdAt: string;
}

export function nodeIdFromPublicKey(rawPublicKey: Uint8Array): string {
  const digest = createHash('sha256').update(rawPublicKey).digest();
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < NODE_ID_LENGTH) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === NODE_ID_LENGTH) break;
    value &= (1 << bits) - 1;
  }
  return out;
}

/** Raw public key bytes: the last 32 bytes of the SPKI DER encoding (RFC 8410, section 4). */
function rawPublicKey(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
}

function toIdentity(privateKey: KeyObject): NodeIdentity {
  const raw = rawPublicKey(privateKey);
  return {
    nodeId: nodeIdFromPublicKey(raw),
    publicKey: raw.toString('base64url'),
    sign: (data) => sign(null, data, privateKey),
  };
}

/** Parsed public keys: parsing one costs about as much as the check itself. Bounded; oldest out first. */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 1024;

/** Verifies an Ed25519 signature by a raw base64url public key. */
export function verifySignature(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  let key = publicKeys.get(publicKey);
  if (!key) {
    const raw = Buffer.from(publicKey, 'base64url');
    if (raw.length !== 32) return false;
    // SPKI prefix for Ed25519 (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING }.
    try {
      key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
    } catch {
      return false; // not a key at all: nothing verifies with it
    }
    if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(publicKey, key);
  }
  return verify(null, data, key, signature);
}

/** Loads the identity from the data dir, or makes and stores a new one. */
export function loadOrCreateIdentity(dataDir: string): Promise<{ identity: NodeIdentity; created: boolean }> {
  return loadOrCreateKeyFile(path.join(dataDir, IDENTITY_FILE));
}

/**
 * Loads an Ed25519 key file, or makes and stores a new one (mode 0600, its
 * folder 0700). Node identities and owner keys share this format; for an
 * owner key, `nodeId` is the owner id, derived from its key the same way.
 */
export async function loadOrCreateKeyFile(file: string): Promise<{ identity: NodeIdentity; created: boolean }> {
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return { identity: parseIdentity(text, file), created: false };

  // The data dir holds the private key: owner-only, like ~/.ssh. Level by level: an impossible path fails at once.
  await ensureDir(path.dirname(file), 0o700);
  const { privateKey } = generateKeyPairSync('ed25519');
  const identity = toIdentity(privateKey);
  const stored: IdentityFile = {
    version: 1,
    nodeId: identity.nodeId,
    publicKey: identity.publicKey,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  return { identity, created: true };
}

/** A new key that lives in memory only (the mesh simulation's nodes; never a node's own identity). */
export function ephemeralIdentity(): NodeIdentity {
  return toIdentity(generateKeyPairSync('ed25519').privateKey);
}

/** Reads an existing identity without creating one (for `apiary id`). */
export async function readIdentity(dataDir: string): Promise<NodeIdentity | undefined> {
  const file = path.join(dataDir, IDENTITY_FILE);
  try {
    return parseIdentity(await readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseIdentity(text: string, file: string): NodeIdentity {
  const broken = (why: string, cause?: unknown) =>
    new ApiaryError(ErrorCodes.IDENTITY_INVALID, `identity file ${file} is damaged: ${why}`, {
      hint: 'restore it from a backup; deleting it makes a new identity, and neighbours will no longer recognise this node',
      cause,
    });
  let parsed: Partial<IdentityFile>;
  try {
    parsed = JSON.parse(text) as Partial<IdentityFile>;
  } catch (err) {
    throw broken('not valid JSON', err);
  }
  if (parsed.version !== 1 || typeof parsed.privateKeyPem !== 'string') throw broken('missing version or private key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(parsed.privateKeyPem);
  } catch (err) {
    throw broken('the private key does not parse', err);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw broken(`the key is ${privateKey.asymmetricKeyType ?? 'unknown'}, not ed25519`);
  const identity = toIdentity(privateKey);
  if (parsed.nodeId !== identity.nodeId || parsed.publicKey !== identity.publicKey) {
    throw broken('the stored node id or public key does not match the private key');
  }
  return identity;
}
