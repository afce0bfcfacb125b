/**
 * The owners whose signed models this node runs: its own owner (the key in
 * mesh.owner.keyFile, default <dataDir>/owner.json, or the owner of
 * mesh.owner.certificateFile) and the owners in models.trust.owners, NOT
 * those of mesh.trust.owners: accepting an owner's data must not let it
 * replace this node's models. Keys in mesh.trust.revoked are refused.
 * Shipped models need no signer (see models/registry/manifest-signature.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ModelTrust } from '../../models/registry/manifest-signature.js';
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile } from '../identity/identity.js';
import { decodeCertificate } from '../mesh/certificate.js';

/** This node's own owner key, if it has one yet (never creates one). */
export async function ownOwnerKey(config: ApiaryConfig): Promise<string | undefined> {
  const { owner } = config.mesh;
  if (owner.certificateFile !== undefined) {
    try {
      return decodeCertificate(JSON.parse(await readFile(owner.certificateFile, 'utf8'))).owner;
    } catch (err) {
      throw new ApiaryError(ErrorCodes.CERTIFICATE_INVALID, `cannot use the node certificate ${owner.certificateFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const keyFile = owner.keyFile ?? path.join(config.node.dataDir, 'owner.json');
  if (!existsSync(keyFile)) return undefined;
  return (await loadOrCreateKeyFile(keyFile)).identity.publicKey;
}

export async function modelTrustFromConfig(config: ApiaryConfig): Promise<ModelTrust> {
  const owners = new Map<string, string>(config.models.trust.owners.map((o) => [o.publicKey, o.name]));
  const own = await ownOwnerKey(config);
  if (own !== undefined) owners.set(own, 'this node\'s owner');
  return {
    owners,
    revoked: new Set(config.mesh.trust.revoked),
    signers: new Map(Object.entries(config.models.trust.signers)),
    ...(own === undefined ? {} : { own }),
  };
}
