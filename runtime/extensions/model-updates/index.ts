/**
 * Model updates over the mesh (model-updates.ts): signed releases from
 * trusted owners are installed, tested, and rolled back if they misbehave.
 * It listens before the mesh goes on the network, so no early release is
 * missed, and handles releases once the models are loaded.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import { declareModelUpdateCommands } from './commands.js';
import { releasePolicyFromConfig } from './model-release-policy.js';
import { ModelUpdates, pendingReleasesFile } from './model-updates.js';

export function createModelUpdates(config: ApiaryConfig): Extension {
  let updates: ModelUpdates | undefined;
  let unwatch: (() => void) | undefined;
  return {
    name: 'model-updates',
    start(ctx) {
      const { mesh, models } = ctx;
      if (!mesh) {
        declareModelUpdateCommands(ctx.commands);
        return Promise.resolve();
      }
      updates = new ModelUpdates({
        mesh, host: models, trust: models.trust, policy: releasePolicyFromConfig(config, models.trust),
        counters: ctx.counters, logger: ctx.logger, pendingFile: pendingReleasesFile(config.node.dataDir),
      });
      const running = updates;
      unwatch = models.watchInvalidOutputs((model, err) => running.onInvalidOutput(model, err));
      declareModelUpdateCommands(ctx.commands, updates);
      updates.start(ctx.modelsReady);
      return Promise.resolve();
    },
    async stop() {
      unwatch?.();
      await updates?.stop();
    },
    status: () => (updates ? { models: { updates: updates.recent } } : {}),
  };
}
