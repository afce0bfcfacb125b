#!/usr/bin/env node
/**
 * The entry of dist/apiary.mjs, what `apiary` and `npm start` run: it runs
 * the CLI bundle, dist/apiary.cjs, through V8's code cache (code-cache.ts).
 * On Node 22.1+ Node's own compile cache also covers the modules the bundle
 * loads from node_modules (onnxruntime-node, serialport); on Node 20 this call
 * is a no-op.
 */
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import { runBundle } from './code-cache.js';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
// The bundle's `import()` calls come here: an ES module's own import(), which code from V8's cache can always use.
runBundle(fileURLToPath(new URL('./apiary.cjs', import.meta.url)), (specifier) => import(specifier));
