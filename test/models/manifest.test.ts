import { copyFile, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadManifest, sha256Hex, verifyModelFile } from '../../models/registry/manifest.js';
import { ErrorCodes } from '../../runtime/errors.js';
import { HIVE_SOUND_DIR, HIVE_THERMAL_DIR, expectApiaryError, withTempDir } from './helpers.js';

/** Copies a shipped model dir into `dir` and returns the parsed manifest JSON for editing. */
async function copyModel(from: string, dir: string): Promise<Record<string, unknown>> {
  await copyFile(path.join(from, 'model.onnx'), path.join(dir, 'model.onnx'));
  await copyFile(path.join(from, 'manifest.json'), path.join(dir, 'manifest.json'));
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
}

describe('model manifests', () => {
  it.each([HIVE_SOUND_DIR, HIVE_THERMAL_DIR])('shipped manifest in %s validates and pins its model file', async (dir) => {
    const manifest = await loadManifest(dir);
    expect(manifest.file).toBe('model.onnx');
    const file = await verifyModelFile(dir, manifest);
    expect(file.sha256).toBe(manifest.sha256);
    expect(sha256Hex(await readFile(path.join(dir, 'model.onnx')))).toBe(manifest.sha256);
  });

  it('names a missing field and the fix', async () => {
    await withTempDir(async (dir) => {
      const json = await copyModel(HIVE_SOUND_DIR, dir);
      delete json.license;
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(json));
      const err = await expectApiaryError(() => loadManifest(dir), ErrorCodes.MODEL_MANIFEST_INVALID);
      expect(err.message).toContain('"license"');
      expect(err.message).toContain(path.join(dir, 'manifest.json'));
      expect(err.hint).toMatch(/fix the named field/);
    });
  });

  it('names a nested invalid field', async () => {
    await withTempDir(async (dir) => {
      const json = await copyModel(HIVE_SOUND_DIR, dir);
      const inputs = json.inputs as { features: { std: number }[] }[];
      const feature = inputs[0]?.features[2];
      if (!feature) throw new Error('fixture has no third feature');
      feature.std = 0;
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(json));
      const err = await expectApiaryError(() => loadManifest(dir), ErrorCodes.MODEL_MANIFEST_INVALID);
      expect(err.message).toContain('inputs[0].features[2].std');
    });
  });

  it('reports a missing manifest as MODEL_NOT_FOUND and bad JSON as MODEL_MANIFEST_INVALID', async () => {
    await withTempDir(async (dir) => {
      await expectApiaryError(() => loadManifest(dir), ErrorCodes.MODEL_NOT_FOUND);
      await writeFile(path.join(dir, 'manifest.json'), '{ "name": ');
      await expectApiaryError(() => loadManifest(dir), ErrorCodes.MODEL_MANIFEST_INVALID);
    });
  });

  it('refuses a model file with one byte changed', async () => {
    await withTempDir(async (dir) => {
      await copyModel(HIVE_SOUND_DIR, dir);
      const modelPath = path.join(dir, 'model.onnx');
      const bytes = await readFile(modelPath);
      const index = Math.floor(bytes.length / 2);
      bytes[index] = (bytes[index] ?? 0) ^ 0x01;
      await writeFile(modelPath, bytes);
      const manifest = await loadManifest(dir);
      const err = await expectApiaryError(() => verifyModelFile(dir, manifest), ErrorCodes.MODEL_HASH_MISMATCH);
      expect(err.message).toContain(modelPath);
      expect(err.message).toContain(manifest.sha256);
      expect(err.message).toContain(sha256Hex(bytes));
      expect(err.hint).toContain('npm run models:build');
    });
  });

  it('refuses a model path that escapes the model directory', async () => {
    await withTempDir(async (root) => {
      const dir = path.join(root, 'model');
      await mkdir(dir);
      const json = await copyModel(HIVE_SOUND_DIR, dir);
      await copyFile(path.join(dir, 'model.onnx'), path.join(root, 'x.onnx'));
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...json, file: '../x.onnx' }));
      const err = await expectApiaryError(() => loadManifest(dir), ErrorCodes.MODEL_MANIFEST_INVALID);
      expect(err.message).toContain('"file"');
      // A manifest object built in code gets the same check in verifyModelFile.
      const valid = await loadManifest(HIVE_SOUND_DIR);
      for (const file of ['../x.onnx', path.join(root, 'x.onnx'), 'sub/../../x.onnx']) {
        await expectApiaryError(() => verifyModelFile(dir, { ...valid, file }), ErrorCodes.MODEL_MANIFEST_INVALID);
      }
    });
  });

  it('refuses a model file that is a symlink out of the model directory', async () => {
    await withTempDir(async (root) => {
      const dir = path.join(root, 'model');
      await mkdir(dir);
      await copyModel(HIVE_SOUND_DIR, dir);
      await rename(path.join(dir, 'model.onnx'), path.join(root, 'outside.onnx'));
      await symlink(path.join(root, 'outside.onnx'), path.join(dir, 'model.onnx'));
      const manifest = await loadManifest(dir);
      const err = await expectApiaryError(() => verifyModelFile(dir, manifest), ErrorCodes.MODEL_MANIFEST_INVALID);
      expect(err.message).toContain('outside.onnx');
    });
  });

  it('reports a missing model file as MODEL_NOT_FOUND', async () => {
    await withTempDir(async (dir) => {
      await copyModel(HIVE_THERMAL_DIR, dir);
      const manifest = await loadManifest(dir);
      await expectApiaryError(() => verifyModelFile(dir, { ...manifest, file: 'other.onnx' }), ErrorCodes.MODEL_NOT_FOUND);
    });
  });
});
