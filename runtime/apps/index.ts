/**
 * Where a node is put together: the kernel, the extensions and the
 * application the config names (`app`). The kernel imports none of them.
 */
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryNode } from '../core/apiary-node.js';
import { declareCoreCommands } from '../core/core-commands.js';
import type { Application, ExtensionEntry } from '../core/extension.js';
import { CommandRegistry } from '../commands/command-registry.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { EXTENSIONS } from '../extensions/index.js';
import type { Logger } from '../log.js';
import { beehiveApp } from './beehive/index.js';
import { sensorNodeApp } from './sensor-node/index.js';

export const APPLICATIONS: readonly Application[] = [beehiveApp, sensorNodeApp];

export function applicationNamed(name: string): Application {
  const app = APPLICATIONS.find((a) => a.name === name);
  if (!app) throw new ApiaryError(ErrorCodes.APP_UNKNOWN, `no application "${name}"`, { hint: `set app to one of: ${APPLICATIONS.map((a) => a.name).join(', ')}` });
  return app;
}

/** The application's extensions first: their listeners see a reading before the recorder stores it (the hive's window, a derived channel). */
export function extensionsFor(config: ApiaryConfig): ExtensionEntry[] {
  return [...applicationNamed(config.app).extensions, ...EXTENSIONS];
}

export function createNode(config: ApiaryConfig, logger: Logger): ApiaryNode {
  return new ApiaryNode(config, logger, extensionsFor(config));
}

/** Every command a node of `app` offers, declared with no node running (`apiary commands`, the CLI's help). */
export function nodeCommands(app = 'beehive'): CommandRegistry {
  const registry = new CommandRegistry();
  declareCoreCommands(registry);
  for (const entry of [...applicationNamed(app).extensions, ...EXTENSIONS]) entry.declareCommands?.(registry);
  return registry;
}
