// Builds the palette: src/apiary.ts bundled (MQTT.js included) to CommonJS dist/apiary.js, which Node-RED 4.1 and
// 5 load with require(), and the editor HTML of every node (src/editor/*.html) joined into dist/apiary.html beside
// it, where Node-RED looks for it. Run by the root `npm run build`, or `node flows/node-red-apiary/build.mjs`.
import { build } from 'esbuild';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, 'dist');
const editorDir = path.join(here, 'src', 'editor');

const started = performance.now();
await mkdir(outDir, { recursive: true });
await build({
  entryPoints: [path.join(here, 'src', 'apiary.ts')],
  outfile: path.join(outDir, 'apiary.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // A node file's module.exports is the function Node-RED calls with RED.
  footer: { js: 'module.exports = module.exports.default;' },
  keepNames: true,
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
const pages = (await readdir(editorDir)).filter((f) => f.endsWith('.html')).sort();
const html = await Promise.all(pages.map(async (f) => `<!-- ${f} -->\n${await readFile(path.join(editorDir, f), 'utf8')}`));
await writeFile(path.join(outDir, 'apiary.html'), html.join('\n'));
process.stdout.write(`built the Node-RED palette in ${path.relative(process.cwd(), outDir) || '.'} in ${Math.round(performance.now() - started)} ms\n`);
