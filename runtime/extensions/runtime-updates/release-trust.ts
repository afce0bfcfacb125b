/** Who may sign this node's runtime releases: its own owner and updates.trust.owners, never a revoked key. */
import type { ApiaryConfig } from '../../config/schema.js';
import { ownOwnerKey } from '../../core/model-trust.js';
import type { ReleaseTrust } from './release-manifest.js';

export async function releaseTrustFromConfig(config: ApiaryConfig): Promise<ReleaseTrust> {
  const owners = new Map<string, string>(config.updates.trust.owners.map((o) => [o.publicKey, o.name]));
  const own = await ownOwnerKey(config);
  if (own !== undefined) owners.set(own, 'this node\'s owner');
  return { owners, revoked: new Set(config.mesh.trust.revoked) };
}
