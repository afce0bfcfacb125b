/** `update/status`. Light on purpose: `apiary commands` declares it without loading the extension. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';

export interface UpdateStatusSource {
  status(): Record<string, unknown>;
}

export interface ReleasePublisher {
  publish(version?: string): Promise<unknown>;
}

export function declareRuntimeUpdateCommands(registry: CommandRegistry, source?: UpdateStatusSource, publisher?: ReleasePublisher): void {
  registry.define('update/status', {
    description: 'the runtime release running, the one on trial and its health so far, and the last update outcomes',
    args: z.strictObject({}),
    unavailable: () => (source ? undefined : 'runtime updates are off on this node (updates.enabled)'),
    handler: () => source?.status(),
  });
  registry.define('update/publish', {
    description: 'announce a runtime release this node runs and has kept (default: the running one) to the mesh; nodes that trust its signer fetch it in checked chunks, install it and run it on trial',
    args: z.strictObject({
      version: z.string().max(64).regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a version such as 0.2.0').optional().describe('the kept release to announce (default: the running one)'),
    }),
    write: true,
    unavailable: () => (publisher ? undefined : 'this node does not spread runtime releases: it needs the packaged app, the mesh, and updates.fromMesh'),
    handler: ({ version }) => publisher?.publish(version),
  });
}
