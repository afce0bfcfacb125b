/**
 * Bundles the compiled CLI into one file, dist/apiary.cjs, which
 * dist/apiary.mjs (what `apiary` and `npm start` run) compiles through V8's
 * code cache (code-cache.ts). One file instead of a few hundred modules
 * saves about a third of the start-up time, most of it module resolution
 * and file reads, which cost more still on an SD card. Native addons, and
 * modules loaded by path at run time, stay external.
 *
 * CommonJS because `vm.Script`, which takes V8's cached data on every Node
 * version, runs scripts, not ES modules. So: `import.meta.url` is the
 * bundle's own file URL; `import()` of a package left outside becomes
 * `require()` (each has a CommonJS entry; Node >= 20.19 also requires ES
 * modules); an `import()` of a computed specifier (onnxruntime-web loads
 * its WebAssembly glue by URL) calls the loader's own `import()`.
 */
import { build, type Plugin } from 'esbuild';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { packagePath } from '../package-root.js';
import { COMPUTED_IMPORTS, leftoverImports } from './bundle-imports.js';

export const BUNDLE_FILE = packagePath('dist', 'apiary.cjs');
/** The ES module entry that runs BUNDLE_FILE (loader-main.ts). */
export const ENTRY_FILE = packagePath('dist', 'apiary.mjs');
export const LAUNCHER_FILE = packagePath('dist', 'launcher.mjs');

export const BUNDLE_EXTERNALS = [
  'onnxruntime-node', // native addon
  'serialport', '@serialport/*', 'firmata', 'browser-serialport', // johnny-five's optional serial stack, native
  'pino-pretty', // loaded on demand with require(), for a terminal only
  // yaml is bundled: every start with a config file parses one, and loading its
  // CommonJS files one by one cost more than parsing them in the bundle.
  '@modelcontextprotocol/*', // `apiary mcp` only: a running node never parses it
];

/**
 * Code of dependencies that Apiary never runs, left out of the bundle so no
 * start parses or loads it (issue 16). The unbundled modules (tests, `tsx`)
 * keep them; both behave the same for what Apiary calls.
 */
const TRIMS: Plugin = {
  name: 'apiary-trims',
  setup(b) {
    // johnny-five's Board requires its REPL module, and with it Node's `repl` (about 10 ms of a
    // start), although Apiary always opens boards with `repl: false` (board-link.ts).
    b.onResolve({ filter: /^\.\/repl$/ }, (args) => (/johnny-five[\\/]lib[\\/]board\.js$/.test(args.importer)
      ? { path: 'johnny-five-repl', namespace: 'apiary-trim' } : undefined));
    // zod's error messages in some 60 languages (0.3 MB, a tenth of the bundle): Apiary's are English,
    // the locale zod registers itself; `z.locales` keeps `en`, and Apiary never picks another.
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => (/[\\/]zod[\\/]v4[\\/]/.test(args.importer)
      ? { path: 'zod-locales', namespace: 'apiary-trim', pluginData: path.resolve(args.resolveDir, '../locales') } : undefined));
    b.onLoad({ filter: /^johnny-five-repl$/, namespace: 'apiary-trim' }, () => ({
      contents: "module.exports = class Repl { constructor() { throw new Error('the johnny-five REPL is not in the Apiary bundle: open boards with repl: false'); } };",
      loader: 'js',
    }));
    b.onLoad({ filter: /^zod-locales$/, namespace: 'apiary-trim' }, (args) => ({
      contents: "export { default as en } from './en.js';", loader: 'js', resolveDir: args.pluginData as string,
    }));
  },
};

async function main(): Promise<void> {
  const started = performance.now();
  await build({
    entryPoints: [packagePath('dist', 'runtime', 'cli', 'main.js')],
    outfile: BUNDLE_FILE,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    plugins: [TRIMS, COMPUTED_IMPORTS],
    supported: { 'dynamic-import': false },
    define: { 'import.meta.url': '__apiaryBundleUrl' },
    banner: { js: "var __apiaryBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    // Less source for V8 to parse at every start; identifiers are kept, so names stay readable in stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    // No keepNames: its __name() calls, one per function and class, gave some 4,000 functions a
    // property table of their own (about 2 MB of heap) and cost about 10% of the start-up CPU
    // (issue 16). Only names esbuild changes to avoid a clash in the bundle (a dependency's
    // `Option` becomes `Option2`) show differently, in a stack trace or `.name`; Apiary reads none.
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const left = leftoverImports(await readFile(BUNDLE_FILE, 'utf8'));
  if (left > 0) throw new Error(`${BUNDLE_FILE} holds ${left} import() call(s) the code cache cannot run: see COMPUTED_IMPORTS in runtime/cli/bundle.ts`);
  await build({
    entryPoints: [packagePath('dist', 'runtime', 'cli', 'loader-main.js')],
    outfile: ENTRY_FILE, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    minifyWhitespace: true, minifySyntax: true, legalComments: 'eof', logLevel: 'warning',
  });
  await chmod(ENTRY_FILE, 0o755);
  // The launcher /usr/bin/apiary runs: it picks the installed runtime release, then loads that release's apiary.mjs.
  await build({
    entryPoints: [packagePath('dist', 'runtime', 'extensions', 'runtime-updates', 'launcher-main.js')],
    outfile: LAUNCHER_FILE, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    minifyWhitespace: true, minifySyntax: true, keepNames: true, legalComments: 'eof', logLevel: 'warning',
  });
  process.stdout.write(`bundled ${BUNDLE_FILE} in ${Math.round(performance.now() - started)} ms\n`);
}

await main();
