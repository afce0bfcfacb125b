/**
 * The kernel's commands: the node's status, the shared document and
 * revocations (the mesh is a kernel service). Extensions and applications
 * declare theirs in their own folder; `apiary commands` lists them all
 * (nodeCommands in runtime/apps/index.ts).
 */
import { z } from 'zod';
import type { CommandRegistry } from '../commands/command-registry.js';
import { ApiaryError, ErrorCodes, isApiaryError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Counters } from '../counters.js';
import type { Mesh } from '../mesh/mesh.js';

/** Maps of the shared document a person may edit; `members` is each node's own record, written by the node. */
const SHARED_MAP = /^(?!members$)[a-z][a-z0-9-]{0,31}$/;

/** The parts of a running node the commands act on; undefined parts make their commands unavailable. */
export interface CoreCommandParts {
  status(): Promise<Record<string, unknown>>;
  mesh: Mesh | undefined;
  counters: Counters;
  logger: Logger;
}

export const MESH_OFF = 'the mesh is off on this node (mesh.enabled)';

/** Declares the kernel's commands; without parts (the CLI, offline), only the declarations. */
export function declareCoreCommands(registry: CommandRegistry, parts?: CoreCommandParts): void {
  const mesh = parts?.mesh;
  registry.define('status', {
    description: "the node's last readings, model outputs and decisions, uptime, storage, counters, mesh and models",
    args: z.object({}),
    unavailable: () => (parts ? undefined : 'no node is running here'),
    handler: () => parts?.status(),
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
      key: z.string().min(1).max(128).describe('the key, like overheating'),
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
        // Imported here: the CLI declares these commands at every start and never runs them.
        const { publishRevocation } = await import('../mesh/create-mesh.js');
        return await publishRevocation(mesh, revocation, parts.counters, parts.logger);
      } catch (err) {
        // Every failure is answered with its code and message (never a silent drop), as before the registry.
        if (isApiaryError(err)) throw new ApiaryError(err.code, err.message);
        throw new ApiaryError(((err as { code?: string }).code ?? ErrorCodes.COMMAND_INVALID) as ErrorCode, (err as Error).message);
      }
    },
  });
}
