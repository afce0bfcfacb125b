/**
 * Builds the mesh parts from the config: the node's mesh identity (owner
 * certificate, X25519 key), its trust policy, the mesh itself, and the
 * broker access policy that goes with it.
 */
import path from 'node:path';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import type { TrustPolicy } from './certificate.js';
import { MeshAccessPolicy } from './mesh-access.js';
import { loadMeshIdentity, type MeshIdentity } from './mesh-identity.js';
import { Mesh } from './mesh.js';

export interface MeshParts {
  readonly identity: MeshIdentity;
  readonly mesh: Mesh;
  readonly access: MeshAccessPolicy;
}

export async function createMesh(config: ApiaryConfig, node: NodeIdentity, counters: Counters, logger: Logger): Promise<MeshParts> {
  const { mesh: settings, node: nodeConfig } = config;
  const identity = await loadMeshIdentity({
    dataDir: nodeConfig.dataDir,
    node,
    name: nodeConfig.name,
    ownerKeyFile: settings.owner.keyFile ?? path.join(nodeConfig.dataDir, 'owner.json'),
    certificateFile: settings.owner.certificateFile,
    now: () => Date.now(),
  });
  const trust: TrustPolicy = {
    owners: new Set([identity.certificate.owner, ...settings.trust.owners.map((o) => o.publicKey)]),
    revoked: new Set(settings.trust.revoked),
    pinned: new Map(settings.neighbours.flatMap((n) => (n.publicKey ? [[n.nodeId, n.publicKey] as const] : []))),
  };
  // Where each authenticated peer connected from: a peer that links to us unasked is linked back there.
  const peerAddresses = new Map<string, string>();
  const mesh = new Mesh({
    settings: {
      neighbours: settings.neighbours,
      dialBack: settings.dialBack,
      discovery: { mdns: settings.discovery.mdns, interface: settings.discovery.interface, port: settings.discovery.port },
      maxHops: settings.maxHops,
      commitIntervalMs: settings.commitInterval,
      batchBytes: 256 * 1024,
      antiEntropyMs: settings.antiEntropyInterval,
      wantTimeoutMs: 5_000,
      maxBytesPerOrigin: settings.retention.maxBytesPerOrigin,
      maxAgeMs: settings.retention.maxAge,
      segmentBytes: config.storage.segmentBytes,
      backoff: { initialMs: 500, maxMs: 30_000 },
    },
    dataDir: nodeConfig.dataDir,
    identity,
    trust,
    peerAddresses,
    prefix: config.bus.topicPrefix,
    counters,
    logger,
  });
  const access = new MeshAccessPolicy({
    prefix: config.bus.topicPrefix,
    nodeId: node.nodeId,
    directory: mesh.directory,
    counters,
    anonymous: config.broker.anonymous,
    grants: settings.grants,
    maxSkewMs: settings.tokenMaxSkew,
    peerAddresses,
    now: () => Date.now(),
  });
  return { identity, mesh, access };
}
