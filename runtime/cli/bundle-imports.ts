/**
 * The bundle (dist/apiary.cjs) runs from V8's code cache, and code from the
 * cache cannot call `import()` on Node 20 (code-cache.ts). esbuild turns an
 * `import()` of a literal specifier into require() (`supported:
 * {'dynamic-import': false}` in bundle.ts); a computed one becomes a call of
 * `__apiaryImport`, which the loader passes in: its own `import()`.
 */
import { readFile } from 'node:fs/promises';
import type { Plugin } from 'esbuild';

/** `import(` not preceded by a name character or a dot, and not followed by a string: a computed specifier. */
export const COMPUTED_IMPORT = /(?<![\w$.])import\((?!\s*["'`])/g;

/** Rewrites computed `import()`s (in our code and in dependencies) before esbuild reads them. */
export const COMPUTED_IMPORTS: Plugin = {
  name: 'apiary-computed-imports',
  setup(b) {
    b.onLoad({ filter: /\.(m?js|cjs)$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (text.search(COMPUTED_IMPORT) === -1) return undefined;
      return { contents: text.replace(COMPUTED_IMPORT, '__apiaryImport('), loader: 'js' };
    });
  },
};

/** Code from V8's cache cannot call `import()` on Node 20 (code-cache.ts): none may be left. */
export function leftoverImports(bundle: string): number {
  return bundle.match(/(?<![\w$.])import\(/g)?.length ?? 0;
}

