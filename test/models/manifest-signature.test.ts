import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxRuntimeNodeBackend } from '../../models/inference/onnxruntime-node-backend.js';
import { isShippedModelDir, signManifestJson, verifyModelDir, NO_TRUST, type ModelTrust } from '../../models/registry/manifest-signature.js';
import { canonicalJson } from '../../runtime/canonical-json.js';
import { loadVerifiedModel } from '../../models/registry/model-runner.js';
import { TestHive as HiveInference } from '../support/test-hive.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import { Counters } from '../../runtime/counters.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../runtime/identity/identity.js';
import { HIVE_SOUND_DIR, expectApiaryError, withTempDir } from './helpers.js';

async function owner(dir: string, name: string): Promise<NodeIdentity> {
  return (await loadOrCreateKeyFile(path.join(dir, `${name}.json`))).identity;
}

const trusting = (...keys: string[]): ModelTrust => ({ owners: new Map(keys.map((k) => [k, 'an owner'])), revoked: new Set() });

/** A copy of the shipped hive-sound model in `<dir>/hive-sound`, signed by `signer` if given. */
async function modelCopy(dir: string, signer?: NodeIdentity): Promise<string> {
  const model = path.join(dir, 'hive-sound');
  await mkdir(model);
  await copyFile(path.join(HIVE_SOUND_DIR, 'model.onnx'), path.join(model, 'model.onnx'));
  const json: unknown = JSON.parse(await readFile(path.join(HIVE_SOUND_DIR, 'manifest.json'), 'utf8'));
  await writeFile(path.join(model, 'manifest.json'), JSON.stringify(signer ? signManifestJson(json, signer) : json, null, 2));
  return model;
}

async function flipByte(file: string, at: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  await writeFile(file, bytes);
}

describe('model manifest signatures', () => {
  it('canonical JSON sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }] })).toBe('{"a":[{"c":null,"d":"x"}],"b":1}');
  });

  it('shipped models are trusted without a signature; their hash still counts', async () => {
    expect(await isShippedModelDir(HIVE_SOUND_DIR)).toBe(true);
    const verdict = await verifyModelDir(HIVE_SOUND_DIR, NO_TRUST);
    expect(verdict.shipped).toBe(true);
    expect(verdict.signer).toBeUndefined();
  });

  it('loads a model signed by a trusted owner through onnxruntime', async () => {
    await withTempDir(async (dir) => {
      const alice = await owner(dir, 'alice');
      const model = await modelCopy(dir, alice);
      expect(await isShippedModelDir(model)).toBe(false);
      const loaded = await loadVerifiedModel({ dir: model, backend: new OnnxRuntimeNodeBackend(), trust: trusting(alice.publicKey) });
      try {
        expect(loaded.signer).toBe(alice.publicKey);
        expect(loaded.manifest.name).toBe('hive-sound');
      } finally {
        await loaded.close();
      }
    });
  });

  it('refuses a model file with one byte changed (hash mismatch), though its manifest is signed', async () => {
    await withTempDir(async (dir) => {
      const alice = await owner(dir, 'alice');
      const model = await modelCopy(dir, alice);
      await flipByte(path.join(model, 'model.onnx'), 100);
      const err = await expectApiaryError(
        () => loadVerifiedModel({ dir: model, backend: new OnnxRuntimeNodeBackend(), trust: trusting(alice.publicKey) }),
        ErrorCodes.MODEL_HASH_MISMATCH,
      );
      expect(err.message).toContain('sha256');
    });
  });

  it('refuses a manifest changed by one byte after signing', async () => {
    await withTempDir(async (dir) => {
      const alice = await owner(dir, 'alice');
      const model = await modelCopy(dir, alice);
      const file = path.join(model, 'manifest.json');
      const text = await readFile(file, 'utf8');
      const at = text.indexOf('"version": "') + '"version": "'.length;
      await writeFile(file, `${text.slice(0, at)}9${text.slice(at + 1)}`); // 0.x.y -> 9.x.y, still a valid manifest
      const err = await expectApiaryError(() => verifyModelDir(model, trusting(alice.publicKey)), ErrorCodes.MODEL_SIGNATURE_INVALID);
      expect(err.hint).toContain('apiary models sign');
    });
  });

  it('refuses a model signed by an untrusted owner, a revoked one, and an unsigned one', async () => {
    await withTempDir(async (dir) => {
      const alice = await owner(dir, 'alice');
      const mallory = await owner(dir, 'mallory');
      const model = await modelCopy(dir, mallory);
      const untrusted = await expectApiaryError(() => verifyModelDir(model, trusting(alice.publicKey)), ErrorCodes.MODEL_SIGNER_UNTRUSTED);
      expect(untrusted.message).toContain(mallory.publicKey);
      expect(untrusted.hint).toContain('models.trust.owners');
      const revoked: ModelTrust = { owners: new Map([[mallory.publicKey, 'mallory']]), revoked: new Set([mallory.publicKey]) };
      expect((await expectApiaryError(() => verifyModelDir(model, revoked), ErrorCodes.MODEL_SIGNER_UNTRUSTED)).message).toContain('revoked');
    });
    await withTempDir(async (dir) => {
      const model = await modelCopy(dir);
      const err = await expectApiaryError(() => verifyModelDir(model, NO_TRUST), ErrorCodes.MODEL_SIGNATURE_MISSING);
      expect(err.hint).toContain('apiary models sign --key-file');
    });
  });

  it('a node refuses an untrusted model from models.dir, counts it, and runs the shipped version instead', async () => {
    await withTempDir(async (dir) => {
      await modelCopy(dir, await owner(dir, 'mallory'));
      const config = parseConfig({ models: { dir, thermal: { enabled: true } } }).models;
      const counters = new Counters();
      const inference = new HiveInference(config, new OnnxRuntimeNodeBackend(), { trust: NO_TRUST, counters });
      try {
        await inference.start();
        expect(inference.refused).toEqual([expect.objectContaining({ model: 'hive-sound', code: ErrorCodes.MODEL_SIGNER_UNTRUSTED })]);
        expect(counters.snapshot()['models.refused']).toBe(1);
        // hive-sound was refused and hive-thermal is not in models.dir: both come from the shipped set.
        expect(inference.models().map((m) => [m.manifest.name, m.signer])).toEqual([['hive-sound', 'shipped'], ['hive-thermal', 'shipped']]);
      } finally {
        await inference.stop();
      }
    });
  });
});
