/**
 * Files shipped with Apiary (models, simulator data) are found from the
 * package root, so the node works from any working directory, from sources
 * (tests) and from the compiled `dist/` alike.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'apiary') {
      cached = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the apiary package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** A path inside the installed package, e.g. packagePath('models'). */
export function packagePath(...parts: string[]): string {
  return path.join(packageRoot(), ...parts);
}
