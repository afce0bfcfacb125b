/**
 * Decision audits (decision-audit.ts): re-runs the model behind each recent
 * decision in the signed feeds this node holds, with the exact version that
 * took it, and checks the recorded input and output.
 */
import type { Extension } from '../../core/extension.js';
import type { FeedEntry } from '../../mesh/feed-entry.js';
import { declareAuditCommands } from './commands.js';
import { auditFeeds } from './decision-audit.js';

/** Entries read back per feed by an audit: days of decisions, bounded work on a board. */
const AUDIT_SCAN_ENTRIES = 20_000;

export function createDecisionAudit(): Extension {
  return {
    name: 'decision-audit',
    start(ctx) {
      const { mesh, models } = ctx;
      declareAuditCommands(ctx.commands, mesh ? {
        audit: async (options) => {
          await ctx.modelsReady;
          const feed = { have: () => mesh.store.have(), read: (origin: string, from: number) => mesh.store.read(origin, from), readEntry: (e: FeedEntry) => mesh.readEntry(e) };
          return auditFeeds(feed, (sha256, version) => models.modelFor(sha256, version), { ...options, scan: AUDIT_SCAN_ENTRIES });
        },
      } : undefined);
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  };
}
