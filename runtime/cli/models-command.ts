/**
 * `apiary models ...`: see which models a node would run and why, check one,
 * sign one with an owner key, and install one into the data dir. The rule
 * (models/registry/manifest-signature.ts): shipped models are trusted with
 * the code; any other model needs a matching hash and the signature of an
 * owner this node trusts.
 */
import { existsSync } from 'node:fs';
import { cp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadManifestWithJson, verifyModelFile, MANIFEST_FILE } from '../../models/registry/manifest.js';
import { signManifestJson, verifyModelDir, type ModelTrust, type ModelVerdict } from '../../models/registry/manifest-signature.js';
import { modelTrustFromConfig } from '../core/model-trust.js';
import { releasePolicyFromConfig } from '../extensions/model-updates/model-release-policy.js';
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryError, ErrorCodes, isApiaryError } from '../errors.js';
import { loadOrCreateKeyFile } from '../identity/identity.js';
import { ownerId } from '../mesh/certificate.js';
import { packagePath } from '../package-root.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';
import { PREVIOUS_SUFFIX, stagingDir, swapInModel } from '../../models/registry/model-install.js';

interface ListRow {
  source: string;
  dir: string;
  name: string;
  version: string;
  sha256: string;
  signer: string;
  trusted: boolean;
  reason?: string;
}

function signerText(verdict: ModelVerdict): string {
  return verdict.shipped ? 'shipped' : verdict.signer ? `${verdict.signer.name} (${ownerId(verdict.signer.publicKey)})` : '?';
}

async function rowFor(source: string, dir: string, trust: ModelTrust): Promise<ListRow> {
  try {
    const verdict = await verifyModelDir(dir, trust);
    const { name, version, sha256 } = verdict.manifest;
    return { source, dir, name, version, sha256, signer: signerText(verdict), trusted: true };
  } catch (err) {
    if (!isApiaryError(err)) throw err;
    const read = await loadManifestWithJson(dir).catch(() => undefined);
    const owner = (read?.json as { signature?: { owner?: unknown } } | undefined)?.signature?.owner;
    return {
      source, dir,
      name: read?.manifest.name ?? path.basename(dir),
      version: read?.manifest.version ?? '?',
      sha256: read?.manifest.sha256 ?? '?',
      signer: typeof owner === 'string' ? ownerId(owner) : 'unsigned',
      trusted: false,
      reason: `${err.code}: ${err.message}`,
    };
  }
}

/** Every model folder (one holding a manifest.json) under the shipped, configured and installed folders. */
export async function modelsListCommand(config: ApiaryConfig, options: { json?: boolean }): Promise<void> {
  const trust = await modelTrustFromConfig(config);
  const roots = new Map<string, string>([[packagePath('models'), 'shipped']]);
  if (config.models.dir !== undefined) roots.set(path.resolve(config.models.dir), 'models.dir');
  const installed = path.join(config.node.dataDir, 'models');
  if (!roots.has(path.resolve(installed))) roots.set(path.resolve(installed), 'installed');
  const rows: ListRow[] = [];
  for (const [root, source] of roots) {
    if (!existsSync(root)) continue;
    for (const entry of (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const dir = path.join(root, entry.name);
      if (entry.isDirectory() && !entry.name.startsWith('.') && !entry.name.endsWith('.previous') && existsSync(path.join(dir, MANIFEST_FILE))) rows.push(await rowFor(source, dir, trust));
    }
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const table = rows.map((r) => [r.source, r.name, r.version, r.sha256.slice(0, 12), r.signer, r.trusted ? 'trusted' : 'REFUSED']);
  const header = ['SOURCE', 'NAME', 'VERSION', 'SHA256', 'SIGNER', 'VERDICT'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...table.map(line)].join('\n')}\n`);
  for (const r of rows.filter((row) => !row.trusted)) process.stdout.write(`\n${r.dir}\n  refused: ${r.reason ?? ''}\n`);
}

/** Hash, signature, trust and pinned signer of one model folder, against this node's config; throws with the reason if refused. */
export async function modelsVerifyCommand(config: ApiaryConfig, dir: string, options: { json?: boolean }): Promise<ModelVerdict> {
  const trust = await modelTrustFromConfig(config);
  const verdict = await verifyModelDir(path.resolve(dir), trust);
  const { name, version, sha256 } = verdict.manifest;
  if (verdict.signer) await releasePolicyFromConfig(config, trust).checkSigner(name, verdict.signer.publicKey, path.resolve(dir));
  process.stdout.write(
    options.json
      ? `${JSON.stringify({ ok: true, name, version, sha256, shipped: verdict.shipped, signer: verdict.signer?.publicKey ?? null })}\n`
      : `ok: ${name} ${version}, sha256 ${sha256} matches, ${verdict.shipped ? 'shipped with Apiary' : `signed by ${signerText(verdict)}`}\n`,
  );
  return verdict;
}

/** Signs `<dir>/manifest.json` with the owner key, after checking the model file's hash. */
export async function modelsSignCommand(dir: string, options: { keyFile: string }): Promise<void> {
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) {
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'make one with: apiary owner init --key-file <file>, or point --key-file at yours' });
  }
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const modelDir = path.resolve(dir);
  const { manifest, json, file } = await loadManifestWithJson(modelDir);
  await verifyModelFile(modelDir, manifest); // never vouch for bytes that are not the ones the manifest names
  const signed = signManifestJson(json, owner);
  await writeFileAtomic(file, `${JSON.stringify(signed, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(
    `signed ${manifest.name} ${manifest.version} (sha256 ${manifest.sha256.slice(0, 12)}...) as owner ${owner.publicKey}\n` +
      `  wrote ${file}\n` +
      `  nodes of other owners run it once they trust you: mesh: { trust: { owners: [ { name: <you>, publicKey: ${owner.publicKey} } ] } }\n`,
  );
}

/**
 * Verifies a model folder, then copies it into `<dataDir>/models/<name>`:
 * copied to a temp folder, verified again there, then renamed into place; the
 * folder it replaces is kept as `<name>.previous`.
 */
export async function modelsInstallCommand(config: ApiaryConfig, dir: string): Promise<void> {
  const source = path.resolve(dir);
  const trust = await modelTrustFromConfig(config);
  const verdict = await verifyModelDir(source, trust);
  const { name, version } = verdict.manifest;
  if (verdict.shipped) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${source} is a model shipped with Apiary; it is always available`, {
      hint: 'to install a copy, sign it first (`apiary models sign`) from a folder outside the package',
    });
  }
  // A model's signer is pinned by its first install, here as over the mesh.
  const policy = releasePolicyFromConfig(config, trust);
  if (verdict.signer) await policy.checkSigner(name, verdict.signer.publicKey, source);
  const root = path.join(config.node.dataDir, 'models');
  const temp = await stagingDir(root, name);
  let target: string;
  let keptPrevious: boolean;
  try {
    await cp(source, temp, { recursive: true, dereference: true, errorOnExist: true });
    await verifyModelDir(temp, trust); // the copy, not just the source, is what the node will load
    ({ target, keptPrevious } = await swapInModel(root, name, temp));
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  if (verdict.signer) await policy.recordInstalled(name, verdict.signer.publicKey);
  const previous = target + PREVIOUS_SUFFIX;
  const configured = config.models.dir === undefined || path.resolve(config.models.dir) === path.resolve(root);
  process.stdout.write(
    `installed ${name} ${version} (signed by ${signerText(verdict)}) in ${target}\n` +
      (keptPrevious ? `  the version it replaced is kept in ${previous}\n` : '') +
      (configured
        ? '  restart the node to load it\n'
        : `  the node loads models from there once its config says: models: { dir: ${root} }\n` +
          '  (models that folder does not hold still come from the shipped set); then restart the node\n'),
  );
}
