/**
 * Where a node is put together: the kernel, the extensions and the
 * application the config names (`app`). The kernel imports none of them.
 */
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryNode } from '../core/apiary-node.js';
import type { ExtensionEntry } from '../core/extension.js';
import { EXTENSIONS } from '../extensions/index.js';
import type { Logger } from '../log.js';
import { applicationNamed } from './applications.js';

export { APPLICATIONS, allNodeCommands, applicationNamed, nodeCommands } from './applications.js';

/** The application's extensions first: their listeners see a reading before the recorder stores it (the hive's window, a derived channel). */
export function extensionsFor(config: ApiaryConfig): ExtensionEntry[] {
  return [...applicationNamed(config.app).extensions, ...EXTENSIONS];
}

export function createNode(config: ApiaryConfig, logger: Logger): ApiaryNode {
  return new ApiaryNode(config, logger, extensionsFor(config));
}
