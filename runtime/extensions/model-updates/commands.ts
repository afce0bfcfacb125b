/** `models/publish`. Light on purpose: `apiary commands` declares it without loading the updater. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';
import type { ModelUpdates } from './model-updates.js';

export function declareModelUpdateCommands(registry: CommandRegistry, updates?: ModelUpdates): void {
  registry.define('models/publish', {
    description: "install a signed model folder on the node's machine and spread it over the mesh to every node that trusts the signer",
    args: z.strictObject({
      dir: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'dir: an absolute path on the node\'s machine').describe('the model folder (manifest.json + model file), an absolute path on the node\'s machine'),
    }),
    write: true,
    unavailable: () => (updates ? undefined : 'this node does not take model updates: it needs mesh.enabled and models.meshUpdates'),
    handler: ({ dir }) => updates?.publish(dir),
  });
}
