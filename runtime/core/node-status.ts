/**
 * What the node says about itself: `apiary status` (the kernel's part; each
 * extension merges its own) and the retained `info` message.
 */
import { readFileSync } from 'node:fs';
import type { Device } from '../../devices/device.js';
import type { SelectedInferenceBackend } from '../../models/inference/select-backend.js';
import type { EmbeddedBroker } from '../broker/embedded-broker.js';
import type { Clock } from '../clock.js';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { Mesh } from '../mesh/mesh.js';
import { packagePath } from '../package-root.js';
import type { ModelHost } from './model-host.js';
import type { LatestValues } from './node-context.js';
import type { NodeEvents } from './node-events.js';
import type { NodeStorage } from './node-storage.js';
import { sharedDigest } from './shared-digest.js';

export const APIARY_VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

export interface StatusParts {
  config: ApiaryConfig;
  identity: NodeIdentity;
  clock: Clock;
  counters: Counters;
  countersSince: number;
  startedAtReal: number;
  latest: LatestValues;
  storage: NodeStorage | undefined;
  device: Device | undefined;
  broker: EmbeddedBroker | undefined;
  mesh: Mesh | undefined;
  backend: SelectedInferenceBackend | undefined;
  models: ModelHost | undefined;
}

/** The kernel's keys of `apiary status` (they never change; extensions add theirs). */
export async function nodeStatus(p: StatusParts): Promise<Record<string, unknown>> {
  const streams = (await p.storage?.stats()) ?? [];
  return {
    nodeId: p.identity.nodeId,
    publicKey: p.identity.publicKey,
    name: p.config.node.name,
    app: p.config.app,
    version: APIARY_VERSION,
    device: p.device?.kind ?? p.config.device.kind,
    /** `disconnected` before the device opens, and while a lost board is sought again. */
    deviceState: p.device ? p.device.state : 'disconnected',
    speed: p.clock.speed,
    uptimeS: Math.round((Date.now() - p.startedAtReal) / 1000),
    nodeTime: p.clock.now(),
    latest: p.latest,
    storage: { dataDir: p.config.node.dataDir, bytes: streams.reduce((sum, s) => sum + s.bytes, 0), streams },
    counters: p.counters.snapshot(),
    countersSince: new Date(p.countersSince).toISOString(),
    deviceCounters: p.device?.stats() ?? {},
    broker: p.broker ? { url: p.broker.url, clients: p.broker.connectedClients, connections: p.broker.openConnections } : undefined,
    mesh: p.mesh ? { ...p.mesh.status(), shared: sharedDigest(p.mesh.state) } : undefined,
    inference: p.backend?.selection,
    models: {
      dir: p.models?.modelsDir,
      loaded: p.models?.models().map((m) => ({ name: m.manifest.name, version: m.manifest.version, sha256: m.sha256, signer: m.signer })) ?? [],
      refused: p.models?.refused ?? [],
      updates: [],
    },
  };
}

/** Who this node is (retained on `info`): the application's models and rules included. */
export function nodeInfo(config: ApiaryConfig, identity: NodeIdentity, models: ModelHost): Record<string, unknown> {
  return {
    nodeId: identity.nodeId,
    publicKey: identity.publicKey,
    name: config.node.name,
    version: APIARY_VERSION,
    device: config.device.kind,
    models: models.models().map((m) => ({ name: m.manifest.name, version: m.manifest.version, sha256: m.sha256 })),
    rules: config.decisions.map((r) => ({ id: r.id, input: r.input, severity: r.severity, message: r.message })),
  };
}

/** The kernel's own listeners, first in line: the latest values for status. */
export function trackLatest(events: NodeEvents, latest: LatestValues): void {
  events.on('kernel', 'reading', (reading) => { latest.readings[reading.channel] = reading; });
  events.on('kernel', 'model-output', (output) => { latest.models[output.model] = output; });
  events.on('kernel', 'decision', ({ time: _time, evidence: _evidence, ...decision }) => { latest.decisions[decision.rule] = decision; });
}
