/**
 * `apiary owner ...`: the owner's key, kept off the boards if the owner
 * wishes. A board prints its keys (`apiary id`); the owner signs a
 * certificate for it on a laptop (`apiary owner sign`) and copies only that
 * file to the board (mesh.owner.certificateFile). Other owners add the owner
 * key (`apiary owner show`) to their mesh.trust.owners.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile, nodeIdFromPublicKey } from '../identity/identity.js';
import { certificateNodeId, signCertificate } from '../mesh/certificate.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

const KEY = /^[A-Za-z0-9_-]{43}$/;

export interface OwnerKeyOptions {
  keyFile: string;
}

/** Creates the owner key if there is none; prints the public key either way. */
export async function ownerShowCommand(options: OwnerKeyOptions & { create: boolean; json?: boolean }): Promise<void> {
  const file = path.resolve(options.keyFile);
  if (!options.create && !existsSync(file)) {
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${file}`, { hint: 'make one with: apiary owner init --key-file <file> (keep it off the boards, and backed up)' });
  }
  const { identity, created } = await loadOrCreateKeyFile(file);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ownerKey: identity.publicKey, ownerId: identity.nodeId, keyFile: file, created })}\n`);
    return;
  }
  process.stdout.write(
    `${created ? `new owner key written to ${file} (private: keep it safe, and off the boards if you can)\n` : ''}` +
      `owner key: ${identity.publicKey}\n` +
      `  others trust your nodes with, in their config:\n` +
      `    mesh: { trust: { owners: [ { name: <you>, publicKey: ${identity.publicKey} } ] } }\n`,
  );
}

export interface OwnerSignOptions extends OwnerKeyOptions {
  nodeKey?: string;
  boxKey?: string;
  /** `apiary id --json` output of the board, instead of the two keys. */
  from?: string;
  name: string;
  out?: string;
}

/** Signs a node certificate with the owner key, for a board that does not hold the key. */
export async function ownerSignCommand(options: OwnerSignOptions): Promise<void> {
  const keys = options.from !== undefined ? await keysFromIdFile(options.from) : { nodeKey: options.nodeKey, boxKey: options.boxKey };
  if (keys.nodeKey === undefined || keys.boxKey === undefined) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'the node to sign for is missing', { hint: 'give --node-key and --box-key (from `apiary id` on the board), or --from <file with `apiary id --json` output>' });
  }
  for (const [flag, key] of [['--node-key', keys.nodeKey], ['--box-key', keys.boxKey]] as const) {
    if (!KEY.test(key)) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${flag} is not a 43-character base64url key: ${JSON.stringify(key)}`, { hint: 'copy it from `apiary id` on the board' });
  }
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) {
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'make one with: apiary owner init --key-file <file>, or point --key-file at yours' });
  }
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const cert = signCertificate(owner, { node: keys.nodeKey, box: keys.boxKey, name: options.name, issuedAt: Date.now() });
  const nodeId = certificateNodeId(cert);
  const out = path.resolve(options.out ?? `${nodeId}.cert.json`);
  await writeFileAtomic(out, `${JSON.stringify(cert, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(
    `signed node ${nodeId} ("${options.name}") as owner ${owner.publicKey}\n` +
      `  wrote ${out}\n` +
      `  copy it to the board and set in its config: mesh: { owner: { certificateFile: ${path.basename(out)} } }\n`,
  );
}

async function keysFromIdFile(file: string): Promise<{ nodeKey?: string; boxKey?: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `cannot read ${file}: ${(err as Error).message}`, { hint: 'save the output of `apiary id --json` on the board to that file' });
  }
  const { nodeId, publicKey, boxKey } = (raw ?? {}) as Record<string, unknown>;
  if (typeof publicKey !== 'string' || typeof boxKey !== 'string' || !KEY.test(publicKey)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file} is not the output of \`apiary id --json\` (publicKey and boxKey are missing)`);
  }
  if (nodeId !== undefined && nodeId !== nodeIdFromPublicKey(Buffer.from(publicKey, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file}: nodeId ${JSON.stringify(nodeId)} does not belong to its publicKey`);
  }
  return { nodeKey: publicKey, boxKey };
}
