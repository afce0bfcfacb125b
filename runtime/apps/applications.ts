/**
 * The applications and the commands their nodes offer. Light on purpose: the
 * CLI builds its node commands from here at every start, without loading the
 * node (runtime/apps/index.ts puts a node together).
 */
import { declareCoreCommands } from '../core/core-commands.js';
import type { Application } from '../core/extension.js';
import { CommandRegistry } from '../commands/command-registry.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { EXTENSIONS } from '../extensions/index.js';
import { beehiveApp } from './beehive/index.js';
import { sensorNodeApp } from './sensor-node/index.js';

export const APPLICATIONS: readonly Application[] = [beehiveApp, sensorNodeApp];

export function applicationNamed(name: string): Application {
  const app = APPLICATIONS.find((a) => a.name === name);
  if (!app) throw new ApiaryError(ErrorCodes.APP_UNKNOWN, `no application "${name}"`, { hint: `set app to one of: ${APPLICATIONS.map((a) => a.name).join(', ')}` });
  return app;
}

/** Every command a node of `app` offers, declared with no node running (`apiary commands`, the CLI's help). */
export function nodeCommands(app = 'beehive'): CommandRegistry {
  const registry = new CommandRegistry();
  declareCoreCommands(registry);
  for (const entry of [...applicationNamed(app).extensions, ...EXTENSIONS]) entry.declareCommands?.(registry);
  return registry;
}

/** Every command of any application, for the CLI (a node whose application lacks one answers that it does not know it). */
export function allNodeCommands(): CommandRegistry {
  const all = new CommandRegistry();
  for (const app of APPLICATIONS) {
    for (const spec of nodeCommands(app.name).list()) if (!all.get(spec.name)) all.define(spec.name, spec);
  }
  return all;
}
