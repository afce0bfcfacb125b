/**
 * Where an installed `apiary` looks for its config when --config does not
 * name one: set by the package's `/usr/bin/apiary` wrapper (packaging/apiary.sh),
 * so the service and a person at the shell, in whatever folder, find the same
 * node: a first-boot file on the SD card's boot partition, else the one in
 * /etc, and the system data dir. When set, it replaces ./apiary.yaml.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface ConfigSearch {
  /** Files tried in order (absolute paths); the first that exists is read. */
  readonly files: readonly string[];
  /** node.dataDir for a config found this way (or for the built-in defaults, when none is found) that does not name one. */
  readonly dataDir: string | undefined;
}

/** APIARY_CONFIG_PATH: files separated by ":"; APIARY_DATA_DIR: the data dir. Relative entries are ignored. */
export function configSearchFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigSearch {
  const files = (env.APIARY_CONFIG_PATH ?? '').split(':').filter((f) => f !== '' && path.isAbsolute(f));
  const dataDir = env.APIARY_DATA_DIR !== undefined && path.isAbsolute(env.APIARY_DATA_DIR) ? env.APIARY_DATA_DIR : undefined;
  return { files, dataDir };
}

export function firstExisting(files: readonly string[]): string | undefined {
  return files.find((file) => existsSync(file));
}
