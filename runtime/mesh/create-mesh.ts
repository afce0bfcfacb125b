/**
 * Builds the mesh parts from the config: the node's mesh identity (owner
 * certificate, X25519 key), its trust policy, the mesh itself, and the
 * broker access policy that goes with it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import type { TrustPolicy } from './certificate.js';
import { localTopicRulesFor } from '../broker/topic-acl.js';
import { MeshAccessPolicy, type PeerAddress } from './mesh-access.js';
import { loadMeshIdentity, type MeshIdentity } from './mesh-identity.js';
import { Mesh } from './mesh.js';
import { ReplayCache } from './replay-cache.js';
import { decodeRevocation, REVOCATION_ENTRY_TYPE, revokedNodeId, type Revocation } from './revocation.js';
import type { PinnedCertificate } from './peer-link.js';
import { ApiaryError, ErrorCodes } from '../errors.js';

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
  // Link tokens seen, kept across restarts so none is accepted twice.
  await mkdir(path.join(nodeConfig.dataDir, 'mesh'), { recursive: true });
  const replays = new ReplayCache({ file: path.join(nodeConfig.dataDir, 'mesh', 'link-replays.json'), counters });
  await replays.load(Date.now());
  // Where each authenticated peer connected from: a peer that links to us unasked is linked back there.
  const peerAddresses = new Map<string, PeerAddress>();
  const mesh = new Mesh({
    settings: {
      neighbours: await Promise.all(settings.neighbours.map(async (n, index) => ({
        url: n.url,
        nodeId: n.nodeId,
        ...(n.tlsCertificate === undefined ? {} : { pinnedCertificate: await readPinnedCertificate(n.tlsCertificate, `mesh.neighbours.${index}.tlsCertificate`) }),
      }))),
      dialBack: settings.dialBack,
      discovery: { mdns: settings.discovery.mdns, interface: settings.discovery.interface, port: settings.discovery.port },
      maxHops: settings.maxHops,
      commitIntervalMs: settings.commitInterval,
      batchBytes: 256 * 1024,
      antiEntropyMs: settings.antiEntropyInterval,
      wantTimeoutMs: 5_000,
      ...(settings.graftTimeout !== undefined ? { graftTimeoutMs: settings.graftTimeout } : {}),
      maxBytesPerOrigin: settings.retention.maxBytesPerOrigin,
      maxAgeMs: settings.retention.maxAge,
      segmentBytes: config.storage.segmentBytes,
      budgets: settings.budgets,
      backoff: { initialMs: 500, maxMs: 30_000 },
      maxSkewMs: settings.tokenMaxSkew,
      linkProofTimeoutMs: settings.linkProofTimeout,
      clockSkewMs: settings.clockSkew,
      sharedState: { maps: settings.sharedState.maps, otherMaps: settings.sharedState.otherMaps },
      ...(settings.replicate !== undefined ? { replicate: settings.replicate } : {}),
      relayMaxBytes: settings.relay.maxBytes,
    },
    dataDir: nodeConfig.dataDir,
    identity,
    trust,
    peerAddresses,
    replays,
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
    identity,
    replays,
    peersOverTlsOnly: config.broker.tls !== undefined && config.broker.tls.peersOnly,
    acceptRelayedPlainLinks: settings.acceptRelayedPlainLinks,
    localTopics: localTopicRulesFor(config, node.nodeId, counters),
  });
  access.publishProof = (topic, proof) => mesh.publishLinkProof(topic, proof);
  // Revocations from the mesh (any trusted node's feed carries its owner's signed revocations).
  mesh.on('entry', (entry) => {
    if (entry.type !== REVOCATION_ENTRY_TYPE) return;
    // A trusted node's feed may still carry anything: a body that is no revocation is counted, never thrown.
    try {
      applyRevocation(mesh, JSON.parse(entry.body) as unknown, counters, logger);
    } catch (err) {
      if (err instanceof SyntaxError) counters.increment('mesh.rejected.revocation_invalid');
    }
  });
  return { identity, mesh, access };
}

function applyRevocation(mesh: Mesh, raw: unknown, counters: Counters, logger: Logger): boolean {
  try {
    const applied = mesh.directory.revoke(raw);
    if (applied) {
      counters.increment('mesh.revocations_applied');
      logger.warn({ node: revokedNodeId(raw as Revocation) }, 'node revoked by its owner: its links, entries and certificate are refused from now on');
    }
    return applied;
  } catch (err) {
    counters.increment(`mesh.rejected.revocation_${(err as { code?: string }).code === ErrorCodes.PEER_UNTRUSTED ? 'untrusted' : 'invalid'}`);
    throw err;
  }
}

/**
 * Applies an owner's signed revocation here, and appends it to this node's
 * feed so it reaches every node of the mesh (`apiary mesh revoke`). Throws
 * CERTIFICATE_INVALID or PEER_UNTRUSTED (counted) for one that is not valid here.
 */
export async function publishRevocation(mesh: Mesh, raw: unknown, counters: Counters, logger: Logger): Promise<{ nodeId: string; applied: boolean }> {
  const revocation = decodeRevocation(raw);
  const applied = applyRevocation(mesh, revocation, counters, logger);
  if (applied) await mesh.append(REVOCATION_ENTRY_TYPE, revocation);
  return { nodeId: revokedNodeId(revocation), applied };
}

/** A neighbour's broker certificate to pin; a file that is not one PEM certificate is a config error naming the field. */
export async function readPinnedCertificate(file: string, field: string): Promise<PinnedCertificate> {
  try {
    const pem = await readFile(file, 'utf8');
    return { pem, fingerprint256: new X509Certificate(pem).fingerprint256 };
  } catch (err) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `field "${field}": cannot use ${file} as a pinned certificate: ${(err as Error).message}`, {
      hint: 'copy the certificate file (PEM) of that node\'s broker.tls, and give its path relative to the config file',
    });
  }
}

/** The broker's own certificate and key (broker.tls), read at start; a bad file is a config error naming the field. */
export async function readBrokerTls(tls: { certificateFile: string; keyFile: string }, field = 'broker.tls'): Promise<{ cert: string; key: string }> {
  const read = async (file: string, field: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `field "${field}": cannot read ${file}: ${(err as Error).message}`, {
        hint: 'make a certificate and key with openssl (see docs/mesh.md, "Broker security"), and give their paths relative to the config file',
      });
    }
  };
  const cert = await read(tls.certificateFile, `${field}.certificateFile`);
  const key = await read(tls.keyFile, `${field}.keyFile`);
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
  } catch (err) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `field "${field}": ${tls.certificateFile} and ${tls.keyFile} are not a matching PEM certificate and key: ${(err as Error).message}`);
  }
  return { cert, key };
}
