/**
 * Every command the node offers, declared once. The MQTT command topics
 * (commands.ts) dispatch to this registry, and `apiary commands` lists it
 * offline (built with no parts: every command is then unavailable, but its
 * name, description and arguments are all there).
 */
import { z } from 'zod';
import { CommandRegistry, commandRefused } from '../commands/command-registry.js';
import { ApiaryError, ErrorCodes, isApiaryError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Counters } from '../counters.js';
import { publishRevocation } from '../mesh/create-mesh.js';
import type { FeedEntry } from '../mesh/feed-entry.js';
import type { Mesh } from '../mesh/mesh.js';
import { auditFeeds, type ModelLookup } from './decision-audit.js';
import type { ModelUpdates } from './model-updates.js';

/** Entries read back per feed by an audit: days of decisions, bounded work on a board. */
const AUDIT_SCAN_ENTRIES = 20_000;

/** Maps of the shared document a person may edit; `members` is each node's own record, written by the node. */
const SHARED_MAP = /^(?!members$)[a-z][a-z0-9-]{0,31}$/;

/** The parts of a running node the commands act on; undefined parts make their commands unavailable. */
export interface NodeCommandParts {
  status(): Promise<Record<string, unknown>>;
  /** Undefined on real hardware (read when the command runs: the device opens after the commands). */
  injectSwarm(): { preSwarmFrom: number; swarmFrom: number; swarmUntil: number } | undefined;
  mesh: Mesh | undefined;
  /** Set when the node takes model updates (mesh on, models.meshUpdates). */
  modelUpdates: ModelUpdates | undefined;
  /** The loaded (and previous) models by hash, for re-running the inference behind a decision. */
  modelFor: ModelLookup;
  /** Resolves once the models are loaded. */
  modelsReady(): Promise<unknown>;
  counters: Counters;
  logger: Logger;
}

const MESH_OFF = 'the mesh is off on this node (mesh.enabled)';

/** The node's command registry; without parts (the CLI, offline), only the declarations. */
export function nodeCommands(parts?: NodeCommandParts): CommandRegistry {
  const mesh = parts?.mesh;
  const registry = new CommandRegistry();
  registry.define('status', {
    description: "the node's last readings, model outputs and decisions, uptime, storage, counters, mesh and models",
    args: z.object({}),
    unavailable: () => (parts ? undefined : 'no node is running here'),
    handler: () => parts?.status(),
  });
  registry.define('sim/swarm', {
    description: 'make the simulated colony swarm: pre-swarm sound, then swarming, then the swarm leaves',
    args: z.object({}),
    write: true,
    handler: () => {
      const schedule = parts?.injectSwarm();
      if (!schedule) throw commandRefused('this node has no simulated device: a swarm can only be injected into a simulated beehive');
      parts?.logger.info({ schedule }, 'swarm injected into the simulated hive');
      return schedule;
    },
  });
  registry.define('shared/get', {
    description: 'the apiary-wide shared document (members, thresholds, catalogue) as this node holds it',
    args: z.object({}),
    unavailable: () => (mesh ? undefined : `${MESH_OFF}, so it has no shared state`),
    handler: () => mesh?.shared.toJSON(),
  });
  registry.define('shared/set', {
    description: 'set one fact in the shared document; it spreads to every node, and concurrent edits merge the same way everywhere',
    args: z.strictObject({
      map: z.string().regex(SHARED_MAP, { error: 'map: 1-32 lower-case letters, digits or dashes, not "members" (each node writes its own)' }).describe('the map, like thresholds'),
      key: z.string().min(1).max(128).describe('the key, like swarming'),
      value: z.json().describe('any JSON value'),
    }),
    write: true,
    unavailable: () => (mesh ? undefined : `${MESH_OFF}, so it has no shared state`),
    handler: async ({ map, key, value }) => {
      await mesh?.setShared(map, key, value);
      parts?.logger.info({ map, key }, 'shared state set');
      return { map, key, value };
    },
  });
  registry.define('mesh/revoke', {
    description: 'apply an owner-signed revocation (from `apiary owner revoke`) and spread it to every node',
    args: z.object({ revocation: z.unknown().describe('the revocation file\'s JSON, as written by `apiary owner revoke`') }),
    write: true,
    unavailable: () => (mesh ? undefined : MESH_OFF),
    handler: async ({ revocation }) => {
      if (!mesh || !parts) return undefined;
      try {
        return await publishRevocation(mesh, revocation, parts.counters, parts.logger);
      } catch (err) {
        // Every failure is answered with its code and message (never a silent drop), as before the registry.
        if (isApiaryError(err)) throw new ApiaryError(err.code, err.message);
        throw new ApiaryError(((err as { code?: string }).code ?? ErrorCodes.COMMAND_INVALID) as ErrorCode, (err as Error).message);
      }
    },
  });
  registry.define('models/publish', {
    description: "install a signed model folder on the node's machine and spread it over the mesh to every node that trusts the signer",
    args: z.strictObject({
      dir: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'dir: an absolute path on the node\'s machine').describe('the model folder (manifest.json + model file), an absolute path on the node\'s machine'),
    }),
    write: true,
    unavailable: () => (parts?.modelUpdates ? undefined : 'this node does not take model updates: it needs mesh.enabled and models.meshUpdates'),
    handler: ({ dir }) => parts?.modelUpdates?.publish(dir),
  });
  registry.define('decisions/audit', {
    description: "re-run the model behind each recent decision in the signed feeds this node holds, and check the recorded input and output",
    args: z.strictObject({
      origin: z.string().regex(/^[a-z2-7]{12}$/, { error: 'origin: a 12-character node id' }).optional().describe('only this node\'s feed'),
      limit: z.number().int().min(1).max(200).default(20).describe('the newest this many decisions'),
    }),
    unavailable: () => (mesh ? undefined : `${MESH_OFF}, so it keeps no signed feed to audit`),
    handler: async (options) => {
      if (!mesh || !parts) return undefined;
      await parts.modelsReady();
      const feed = { have: () => mesh.store.have(), read: (origin: string, from: number) => mesh.store.read(origin, from), readEntry: (e: FeedEntry) => mesh.readEntry(e) };
      return auditFeeds(feed, parts.modelFor, { ...options, scan: AUDIT_SCAN_ENTRIES });
    },
  });
  return registry;
}
