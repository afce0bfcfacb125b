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
import { certificateNodeId, signCertificate, verifySelfSignature, type SelfSignature } from '../mesh/certificate.js';
import { signRevocation } from '../mesh/revocation.js';
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
  const workTree = created ? gitWorkTreeOf(path.dirname(file)) : undefined;
  if (workTree !== undefined) {
    process.stderr.write(
      `warning: the owner key ${file} is inside the git work tree ${workTree}: one \`git add .\` would publish the key that certifies your nodes\n` +
        `  fix: keep it elsewhere (--key-file ~/.config/apiary/owner.json), or list ${path.relative(workTree, file)} in ${path.join(workTree, '.gitignore')}\n`,
    );
  }
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

/** The git work tree a folder lies in (a `.git` beside it or above), if any. */
function gitWorkTreeOf(dir: string): string | undefined {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    if (existsSync(path.join(at, '.git'))) return at;
    if (path.dirname(at) === at) return undefined;
  }
}

export interface OwnerSignOptions extends OwnerKeyOptions {
  /** `apiary id --json --owner <this owner key>` output of the board: its keys and self-signature. */
  from?: string;
  name: string;
  /** Days until the certificate expires. */
  validDays?: number;
  out?: string;
}

const SELF_SIGN_HINT = 'on the board run `apiary id --json --owner <your owner key> > id.json` (the owner key from `apiary owner show`), and pass --from id.json';

/**
 * Signs a node certificate (v2) with the owner key, for a board that does not
 * hold the key. The board's self-signature (proof that it holds the node key,
 * and names this owner and its box key) is checked and goes into the certificate.
 */
export async function ownerSignCommand(options: OwnerSignOptions): Promise<void> {
  if (options.from === undefined) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'the board\'s self-signed keys are missing', { hint: SELF_SIGN_HINT });
  }
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) {
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'make one with: apiary owner init --key-file <file>, or point --key-file at yours' });
  }
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const self = await selfSignatureFromIdFile(options.from);
  if (self.owner !== owner.publicKey) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${options.from} was self-signed by the board for owner ${self.owner}, not for this owner key (${owner.publicKey})`, { hint: SELF_SIGN_HINT });
  }
  const validDays = options.validDays ?? 365;
  const expiresAt = Math.max(Date.now(), self.issuedAt) + validDays * 24 * 3600_000;
  const cert = signCertificate(owner, { ...self, name: options.name, expiresAt });
  const nodeId = certificateNodeId(cert);
  const out = path.resolve(options.out ?? `${nodeId}.cert.json`);
  await writeFileAtomic(out, `${JSON.stringify(cert, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(
    `signed node ${nodeId} ("${options.name}") as owner ${owner.publicKey}, valid until ${new Date(expiresAt).toISOString()}\n` +
      `  wrote ${out}\n` +
      `  copy it to the board and set in its config: mesh: { owner: { certificateFile: ${path.basename(out)} } }\n`,
  );
}

async function selfSignatureFromIdFile(file: string): Promise<SelfSignature> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `cannot read ${file}: ${(err as Error).message}`, { hint: SELF_SIGN_HINT });
  }
  const { nodeId, publicKey, boxKey, owner, issuedAt, self } = (raw ?? {}) as Record<string, unknown>;
  if (typeof publicKey !== 'string' || typeof boxKey !== 'string' || !KEY.test(publicKey) || !KEY.test(boxKey)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file} is not the output of \`apiary id --json\` (publicKey and boxKey are missing)`, { hint: SELF_SIGN_HINT });
  }
  if (nodeId !== undefined && nodeId !== nodeIdFromPublicKey(Buffer.from(publicKey, 'base64url'))) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file}: nodeId ${JSON.stringify(nodeId)} does not belong to its publicKey`);
  }
  if (typeof owner !== 'string' || typeof self !== 'string' || typeof issuedAt !== 'number') {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file} has no self-signature (it was made without --owner, or by an older apiary)`, { hint: SELF_SIGN_HINT });
  }
  const signed: SelfSignature = { node: publicKey, box: boxKey, owner, issuedAt, self };
  if (!verifySelfSignature(signed)) {
    throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `${file}: the self-signature does not verify with the board's key: the keys were changed after the board signed them`, { hint: SELF_SIGN_HINT });
  }
  return signed;
}

/**
 * Signs a revocation of one of this owner's nodes (`apiary mesh revoke
 * <file>` on any running node of the mesh spreads it to every node).
 */
export async function ownerRevokeCommand(options: OwnerKeyOptions & { nodeKey: string; out?: string }): Promise<void> {
  if (!KEY.test(options.nodeKey)) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--node-key is not a 43-character base64url key: ${JSON.stringify(options.nodeKey)}`, { hint: 'copy the node\'s public key from `apiary id` on it, or from `apiary status`' });
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'point --key-file at the owner key that certified the node' });
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const revocation = signRevocation(owner, options.nodeKey, Date.now());
  const nodeId = nodeIdFromPublicKey(Buffer.from(options.nodeKey, 'base64url'));
  const out = path.resolve(options.out ?? `${nodeId}.revocation.json`);
  await writeFileAtomic(out, `${JSON.stringify(revocation, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(`revoked node ${nodeId} as owner ${owner.publicKey}\n  wrote ${out}\n  spread it with: apiary mesh revoke ${path.basename(out)} (on any running node of the mesh)\n`);
}
