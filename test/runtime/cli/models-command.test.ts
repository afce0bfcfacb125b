/** `apiary models list | verify | sign | install`, run as a user runs them: the compiled CLI in a child process. */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../runtime/errors.js';
import { apiary } from '../../support/cli.js';
import { HIVE_SOUND_DIR } from '../../models/helpers.js';

async function copyModel(to: string): Promise<string> {
  await mkdir(to, { recursive: true });
  for (const file of ['model.onnx', 'manifest.json']) await copyFile(path.join(HIVE_SOUND_DIR, file), path.join(to, file));
  return to;
}

async function ownerKey(dir: string, file: string): Promise<string> {
  const { stdout } = await apiary(['owner', 'init', '--key-file', file, '--json'], dir);
  return (JSON.parse(stdout) as { ownerKey: string }).ownerKey;
}

describe('apiary models', () => {
  let dir: string;
  let alice: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-models-cli-'));
    alice = await ownerKey(dir, 'alice.json');
    await ownerKey(dir, 'mallory.json');
    // This node trusts alice (and its own owner key, which it does not have yet).
    await writeFile(path.join(dir, 'apiary.yaml'), `node: { dataDir: data }\nmodels: { trust: { owners: [ { name: alice, publicKey: ${alice} } ] } }\n`);
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('has --help on every sub-command', async () => {
    for (const command of ['list', 'verify', 'sign', 'install']) {
      const { code, stdout } = await apiary(['models', command, '--help'], dir);
      expect(code).toBe(0);
      expect(stdout).toContain(`Usage: apiary models ${command}`);
    }
  });

  it('lists the shipped models as trusted', async () => {
    const { code, stdout } = await apiary(['models', 'list', '--json'], dir);
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { source: string; name: string; signer: string; trusted: boolean }[];
    expect(rows.filter((r) => r.source === 'shipped').map((r) => [r.name, r.signer, r.trusted])).toEqual([
      ['hive-sound', 'shipped', true], ['hive-thermal', 'shipped', true],
    ]);
    expect((await apiary(['models', 'list'], dir)).stdout).toMatch(/shipped\s+hive-sound\s+\S+\s+[0-9a-f]{12}\s+shipped\s+trusted/);
  });

  it('refuses unsigned, tampered and untrusted models with the reason; verifies a trusted one', async () => {
    const model = await copyModel(path.join(dir, 'work', 'hive-sound'));
    const unsigned = await apiary(['models', 'verify', model], dir);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain(ErrorCodes.MODEL_SIGNATURE_MISSING);
    expect(unsigned.stderr).toContain('apiary models sign --key-file');

    const signed = await apiary(['models', 'sign', model, '--key-file', 'alice.json'], dir);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toContain(alice);
    const ok = await apiary(['models', 'verify', model], dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('signed by alice');

    // One byte of the model file changed: the hash no longer matches.
    const onnx = path.join(model, 'model.onnx');
    const original = await readFile(onnx);
    const tampered = Buffer.from(original);
    tampered[200] = (tampered[200] ?? 0) ^ 0xff;
    await writeFile(onnx, tampered);
    const badHash = await apiary(['models', 'verify', model], dir);
    expect(badHash.code).toBe(1);
    expect(badHash.stderr).toContain(ErrorCodes.MODEL_HASH_MISMATCH);
    // Nor will the owner sign it.
    expect((await apiary(['models', 'sign', model, '--key-file', 'alice.json'], dir)).stderr).toContain(ErrorCodes.MODEL_HASH_MISMATCH);
    await writeFile(onnx, original);

    // One byte of the signed manifest changed.
    const manifestFile = path.join(model, 'manifest.json');
    const text = await readFile(manifestFile, 'utf8');
    await writeFile(manifestFile, text.replace('"description": "', '"description": "X'));
    const badSig = await apiary(['models', 'verify', model], dir);
    expect(badSig.code).toBe(1);
    expect(badSig.stderr).toContain(ErrorCodes.MODEL_SIGNATURE_INVALID);
    await writeFile(manifestFile, text);

    // Signed by an owner this node does not trust.
    await apiary(['models', 'sign', model, '--key-file', 'mallory.json'], dir);
    const untrusted = await apiary(['models', 'verify', model], dir);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain(ErrorCodes.MODEL_SIGNER_UNTRUSTED);
    expect(untrusted.stderr).toContain('models.trust.owners');
    expect((await apiary(['models', 'install', model], dir)).code).toBe(1);
    expect(existsSync(path.join(dir, 'data', 'models', 'hive-sound'))).toBe(false);
  });

  it('install of a tampered unsigned copy names every reason, each with a fix for a model that is not shipped', async () => {
    const model = await copyModel(path.join(dir, 'handed-over', 'hive-sound'));
    const onnx = path.join(model, 'model.onnx');
    const bytes = await readFile(onnx);
    bytes[300] = (bytes[300] ?? 0) ^ 0xff;
    await writeFile(onnx, bytes);
    const refused = await apiary(['models', 'install', model], dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is refused for 2 reasons');
    expect(refused.stderr).toContain(ErrorCodes.MODEL_SIGNATURE_MISSING);
    expect(refused.stderr).toContain(ErrorCodes.MODEL_HASH_MISMATCH);
    expect(refused.stderr).toContain('fix: sign it with `apiary models sign');
    expect(refused.stderr).toContain('fix: the model file is not the one the manifest names');
    // Rebuilding the shipped models cannot fix a model from elsewhere.
    expect(refused.stderr).not.toContain('models:build');
    expect(existsSync(path.join(dir, 'data', 'models', 'hive-sound'))).toBe(false);
    const verified = await apiary(['models', 'verify', model], dir);
    expect(verified.stderr).toContain(ErrorCodes.MODEL_SIGNATURE_MISSING);
    expect(verified.stderr).toContain(ErrorCodes.MODEL_HASH_MISMATCH);
  });

  it('install puts a trusted model in place and keeps the version it replaces', async () => {
    const model = await copyModel(path.join(dir, 'release', 'hive-sound'));
    expect((await apiary(['models', 'sign', model, '--key-file', 'alice.json'], dir)).code).toBe(0);
    const first = await apiary(['models', 'install', model], dir);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('restart the node to load it'); // <dataDir>/models is where a node looks by default
    const target = path.join(dir, 'data', 'models', 'hive-sound');
    const firstManifest = await readFile(path.join(target, 'manifest.json'), 'utf8');

    // A new signature (same model) stands in for a new version.
    await writeFile(path.join(model, 'manifest.json'), (await readFile(path.join(model, 'manifest.json'), 'utf8')).replace(/"version": "[^"]+"/, '"version": "9.9.9"'));
    expect((await apiary(['models', 'sign', model, '--key-file', 'alice.json'], dir)).code).toBe(0);
    const second = await apiary(['models', 'install', model], dir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('hive-sound.previous');
    expect(await readFile(path.join(`${target}.previous`, 'manifest.json'), 'utf8')).toBe(firstManifest);
    expect(await readFile(path.join(target, 'manifest.json'), 'utf8')).toContain('"version": "9.9.9"');

    const rows = JSON.parse((await apiary(['models', 'list', '--json'], dir)).stdout) as { source: string; name: string; version: string; trusted: boolean }[];
    expect(rows.filter((r) => r.source === 'installed').map((r) => [r.name, r.version, r.trusted])).toEqual([['hive-sound', '9.9.9', true]]);
  });

  it('install pins the first signer of a model: another trusted signer is refused until the config names it (finding 10)', async () => {
    const mallory = (JSON.parse((await apiary(['owner', 'show', '--key-file', 'mallory.json', '--json'], dir)).stdout) as { ownerKey: string }).ownerKey;
    const both = `node: { dataDir: pinned }\nmodels: { trust: { owners: [ { name: alice, publicKey: ${alice} }, { name: mallory, publicKey: ${mallory} } ] } }\n`;
    await writeFile(path.join(dir, 'both.yaml'), both);
    const model = await copyModel(path.join(dir, 'pin', 'hive-sound'));
    await apiary(['models', 'sign', model, '--key-file', 'alice.json'], dir);
    expect((await apiary(['models', 'install', model, '--config', 'both.yaml'], dir)).code).toBe(0);
    await apiary(['models', 'sign', model, '--key-file', 'mallory.json'], dir);
    expect((await apiary(['models', 'verify', model, '--config', 'both.yaml'], dir)).stderr).toContain(`pinned to signer ${alice}`);
    const refused = await apiary(['models', 'install', model, '--config', 'both.yaml'], dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${ErrorCodes.MODEL_SIGNER_UNTRUSTED}`);
    expect(refused.stderr).toContain(`pinned to signer ${alice}`);
    expect(refused.stderr).toContain(`models: { trust: { signers: { hive-sound: ${mallory} } } }`);
    await writeFile(path.join(dir, 'both.yaml'), `${both.trimEnd().replace(/ \] } }$/, ' ], signers: { hive-sound: ' + mallory + ' } } }')}\n`);
    const handedOver = await apiary(['models', 'install', model, '--config', 'both.yaml'], dir);
    expect(handedOver.code, handedOver.stderr).toBe(0);
  });
});
