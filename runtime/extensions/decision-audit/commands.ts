/** `decisions/audit`. Light on purpose: `apiary commands` declares it without loading the audit. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';
import type { AuditResult } from './decision-audit.js';

export interface AuditParts {
  audit(options: { origin?: string | undefined; limit: number }): Promise<AuditResult[]>;
}

export function declareAuditCommands(registry: CommandRegistry, parts?: AuditParts): void {
  registry.define('decisions/audit', {
    description: "re-run the model behind each recent decision in the signed feeds this node holds, and check the recorded input and output",
    args: z.strictObject({
      origin: z.string().regex(/^[a-z2-7]{12}$/, { error: 'origin: a 12-character node id' }).optional().describe('only this node\'s feed'),
      limit: z.number().int().min(1).max(200).default(20).describe('the newest this many decisions'),
    }),
    unavailable: () => (parts ? undefined : 'the mesh is off on this node (mesh.enabled), so it keeps no signed feed to audit'),
    handler: (options) => parts?.audit(options),
  });
}
