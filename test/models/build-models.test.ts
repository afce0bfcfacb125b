import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModels } from '../../models/training/build-models.js';
import { packageRoot } from '../../runtime/package-root.js';
import { REPO_ROOT, withTempDir } from './helpers.js';

const MODELS = ['hive-sound', 'hive-thermal'];
const FILES = ['model.onnx', 'manifest.json'];

describe('buildModels', () => {
  it('finds the package root from its own module', () => {
    expect(packageRoot()).toBe(REPO_ROOT);
  });

  it('is deterministic, and the shipped models are what the build produces', async () => {
    await withTempDir(async (a) => {
      await withTempDir(async (b) => {
        const lines: string[] = [];
        const first = await buildModels(a, { log: (l) => lines.push(l) });
        const second = await buildModels(b, { log: () => undefined });
        expect(first.map((m) => m.name)).toEqual(MODELS);
        expect(second.map((m) => m.sha256)).toEqual(first.map((m) => m.sha256));
        expect(lines.some((l) => l.includes('verified hive-sound'))).toBe(true);
        for (const model of MODELS) {
          for (const file of FILES) {
            const fromA = await readFile(path.join(a, model, file));
            const fromB = await readFile(path.join(b, model, file));
            expect(fromB.equals(fromA), `${model}/${file} differs between two builds`).toBe(true);
            // A stale shipped model (features or training changed without a rebuild) fails here.
            const shipped = await readFile(path.join(REPO_ROOT, 'models', model, file));
            expect(shipped.equals(fromA), `models/${model}/${file} is stale: run \`npm run models:build\``).toBe(true);
          }
        }
      });
    });
  });
});
