/**
 * What a node needs to take part in a mesh, besides its signing key: an
 * X25519 key pair for private streams, and a certificate from its owner.
 *
 * The owner key signs the certificate at start-up. By default the owner key
 * lives in the data dir and is made on first start (a one-board owner); an
 * owner with several boards points `mesh.owner.keyFile` of each at the same
 * key file, or signs a certificate elsewhere (`apiary owner sign`) and gives
 * the board only that (`mesh.owner.certificateFile`), so the owner's private
 * key never sits on a board in a field.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../identity/identity.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { certificateNodeId, decodeCertificate, issueCertificate, type NodeCertificate } from './certificate.js';

export const BOX_KEY_FILE = 'box-key.json';

export interface BoxKeyPair {
  /** Raw X25519 public key, base64url. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

export interface MeshIdentity {
  readonly node: NodeIdentity;
  readonly box: BoxKeyPair;
  readonly certificate: NodeCertificate;
}

/** Raw X25519 public key: the last 32 bytes of its SPKI DER (RFC 8410). */
export function rawX25519PublicKey(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64url');
}

export async function loadOrCreateBoxKey(dataDir: string): Promise<BoxKeyPair> {
  const file = path.join(dataDir, BOX_KEY_FILE);
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { privateKeyPem?: unknown };
    if (typeof parsed.privateKeyPem !== 'string') throw new Error('no privateKeyPem');
    const privateKey = createPrivateKey(parsed.privateKeyPem);
    if (privateKey.asymmetricKeyType !== 'x25519') throw new Error(`a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not x25519`);
    return { publicKey: rawX25519PublicKey(privateKey), privateKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ApiaryError(ErrorCodes.IDENTITY_INVALID, `private-stream key ${file} is damaged: ${(err as Error).message}`, {
        hint: 'restore it from a backup; deleting it makes a new key, and private entries sealed to the old one can no longer be read here',
      });
    }
  }
  const { privateKey } = generateKeyPairSync('x25519');
  const publicKey = rawX25519PublicKey(privateKey);
  await writeFileAtomic(file, `${JSON.stringify({ version: 1, publicKey, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, null, 2)}\n`, { mode: 0o600 });
  return { publicKey, privateKey };
}

export interface MeshIdentityOptions {
  dataDir: string;
  node: NodeIdentity;
  name: string;
  /** Owner key file; signs the certificate. */
  ownerKeyFile: string;
  /** A certificate signed elsewhere; when given, the owner key is not needed. */
  certificateFile?: string;
  /** Validity of the certificate the node issues itself at each start, when it holds the owner key. */
  validForMs?: number;
  now: () => number;
}

/**
 * Validity of a certificate a board issues itself (it holds its owner key):
 * five years. Expiry protects nothing there (whoever takes the board takes
 * the owner key and can re-issue; revoke the owner key instead), and the node
 * re-issues at every start; a short one would only cut off a node that runs
 * long without a restart. Owners that keep the key off the board choose their
 * own (`apiary owner sign --valid-days`, default 365).
 */
export const DEFAULT_CERTIFICATE_VALIDITY_MS = 5 * 365 * 24 * 3600_000;

export async function loadMeshIdentity(options: MeshIdentityOptions): Promise<MeshIdentity> {
  const box = await loadOrCreateBoxKey(options.dataDir);
  const certificate = options.certificateFile
    ? await readCertificate(options.certificateFile)
    : issueCertificate((await loadOrCreateKeyFile(options.ownerKeyFile)).identity, options.node, {
      box: box.publicKey, name: options.name, issuedAt: options.now(), validForMs: options.validForMs ?? DEFAULT_CERTIFICATE_VALIDITY_MS,
    });
  if (certificate.node !== options.node.publicKey || certificate.box !== box.publicKey) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `the certificate in ${options.certificateFile ?? '?'} is for node ${certificateNodeId(certificate)}, not this node (${options.node.nodeId})`, {
      hint: 'on this board run `apiary id --json --owner <owner key> > id.json`; on the owner\'s machine `apiary owner sign --from id.json --name <name>`',
    });
  }
  if (certificate.expiresAt <= options.now()) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `the certificate in ${options.certificateFile ?? '?'} expired at ${new Date(certificate.expiresAt).toISOString()}`, {
      hint: 'have the owner sign a new one: `apiary id --json --owner <owner key> > id.json` here, then `apiary owner sign --from id.json --name <name>`',
    });
  }
  return { node: options.node, box, certificate };
}

async function readCertificate(file: string): Promise<NodeCertificate> {
  try {
    return decodeCertificate(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `cannot use the node certificate ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'on this board run `apiary id --json --owner <owner key> > id.json`; on the owner\'s machine `apiary owner sign --from id.json --name <name>`, and copy the new certificate here',
    });
  }
}
