/**
 * The entry of dist/launcher.mjs, which /usr/bin/apiary runs: see launcher.ts.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../package-root.js';
import { RELEASE_ENV } from './launched-release.js';
import { chooseRelease } from './launcher.js';
import { runtimeDir } from './release-slots.js';

async function main(): Promise<void> {
  const factoryRoot = packageRoot();
  const dataDir = process.env.APIARY_DATA_DIR;
  const chosen = chooseRelease(factoryRoot, dataDir, process.argv[2] === 'start');
  if (dataDir !== undefined && dataDir !== '') process.env[RELEASE_ENV.dir] = runtimeDir(dataDir);
  process.env[RELEASE_ENV.slot] = chosen.ref.slot;
  process.env[RELEASE_ENV.version] = chosen.ref.version;
  process.env[RELEASE_ENV.factory] = factoryRoot;
  await import(pathToFileURL(path.join(chosen.root, 'dist', 'apiary.mjs')).href);
}

await main();
