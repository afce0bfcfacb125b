/**
 * `apiary update sign|install|rollback`: runtime releases by hand (the
 * running node's view is `apiary update status`, from the command registry).
 * See runtime/extensions/runtime-updates/ for the format and the rollback.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VERSION } from '../config/migrations.js';
import type { LoadedConfig } from '../config/load-config.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile } from '../identity/identity.js';
import { packageRoot } from '../package-root.js';
import { launchedRelease } from '../extensions/runtime-updates/launched-release.js';
import { installRelease, rollBackByHand } from '../extensions/runtime-updates/install-release.js';
import { signRelease } from '../extensions/runtime-updates/release-file.js';
import { readState, runtimeDir } from '../extensions/runtime-updates/release-slots.js';
import { releaseTrustFromConfig } from '../extensions/runtime-updates/release-trust.js';

/** Where the releases are: the launcher says (under /usr/bin/apiary), else <dataDir>/runtime. */
function runtimePlace(config: LoadedConfig['config']): { dataDir: string; factoryRoot: string } {
  const launched = launchedRelease(process.env);
  if (launched) return { dataDir: path.dirname(launched.dir), factoryRoot: launched.factoryRoot };
  return { dataDir: config.node.dataDir, factoryRoot: packageRoot() };
}

export async function updateSignCommand(payload: string, options: { keyFile: string; out?: string; notes?: string }): Promise<void> {
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) {
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'make one with: apiary owner init --key-file <file>, or point --key-file at yours' });
  }
  if (!existsSync(payload)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${payload} does not exist`, { hint: '`npm run package` writes dist/packages/apiary-runtime_<version>_<arch>.tar.gz' });
  }
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const out = path.resolve(options.out ?? path.join(path.dirname(payload), path.basename(payload).replace(/^apiary-runtime_/, 'apiary_').replace(/\.tar\.gz$/, '.release')));
  if (out === path.resolve(payload)) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--out ${out} would overwrite the payload`, { hint: 'name the release file with --out' });
  const manifest = await signRelease({ payload, signer: owner, out, ...(options.notes === undefined ? {} : { notes: options.notes }) });
  process.stdout.write(
    `signed Apiary ${manifest.version} for ${manifest.arch} (payload sha256 ${manifest.payload.sha256.slice(0, 12)}…) as owner ${owner.publicKey}\n` +
      `  wrote ${out}\n` +
      `  install it on a board: apiary update install ${path.basename(out)}\n` +
      `  boards of other owners take it only if they list you in updates.trust.owners: { name: <you>, publicKey: ${owner.publicKey} }\n`,
  );
}

export async function updateInstallCommand(loaded: LoadedConfig, file: string, options: { force?: boolean; json?: boolean }): Promise<void> {
  const { config } = loaded;
  if (!config.updates.enabled) {
    // Nothing would confirm the trial: the launcher would roll it back after its window.
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'runtime updates are off in this config (updates.enabled: false)', { hint: 'set updates.enabled: true (the default), restart the node, then install' });
  }
  const { dataDir, factoryRoot } = runtimePlace(config);
  const dir = runtimeDir(dataDir);
  const packaged = (await import('../core/node-status.js')).APIARY_VERSION;
  const running = (existsSync(dir) ? readState(dir)?.current.version : undefined) ?? packaged;
  // Root installs for the service's user: what it writes belongs to the owner of the data dir.
  const dataOwner = existsSync(dataDir) ? statSync(dataDir) : undefined;
  const owner = process.getuid?.() === 0 && dataOwner && dataOwner.uid !== 0 ? { uid: dataOwner.uid, gid: dataOwner.gid } : undefined;
  const installed = await installRelease({
    dataDir, file: path.resolve(file), factoryRoot, trust: await releaseTrustFromConfig(config),
    running: { version: running, arch: process.arch, nodeVersion: process.versions.node, configVersion: CONFIG_VERSION - loaded.migrated.length },
    force: options.force ?? false, windowMs: config.updates.healthWindow,
    ...(owner ? { owner } : {}),
    progress: options.json ? undefined : (line) => process.stdout.write(`${line}\n`),
  });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ version: installed.manifest.version, slot: installed.slot, signer: installed.signer, state: installed.state })}\n`);
    return;
  }
  process.stdout.write(
    `installed Apiary ${installed.manifest.version} in slot ${installed.slot}; restart the node to run it:\n` +
      `  sudo systemctl restart apiary\n` +
      `then watch it: apiary update status (it rolls back to ${running} by itself if it is not healthy)\n`,
  );
}

export async function updateRollbackCommand(loaded: LoadedConfig): Promise<void> {
  const { dataDir, factoryRoot } = runtimePlace(loaded.config);
  const state = await rollBackByHand(dataDir, factoryRoot);
  process.stdout.write(`${state.current.version} (${state.current.slot}) runs from the next start: sudo systemctl restart apiary\n`);
}
