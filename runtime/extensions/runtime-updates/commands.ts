/** `update/status`. Light on purpose: `apiary commands` declares it without loading the extension. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';

export interface UpdateStatusSource {
  status(): Record<string, unknown>;
}

export function declareRuntimeUpdateCommands(registry: CommandRegistry, source?: UpdateStatusSource): void {
  registry.define('update/status', {
    description: 'the runtime release running, the one on trial and its health so far, and the last update outcomes',
    args: z.strictObject({}),
    unavailable: () => (source ? undefined : 'runtime updates are off on this node (updates.enabled)'),
    handler: () => source?.status(),
  });
}
