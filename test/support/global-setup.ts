/**
 * Tests that run the node as a real child process run the compiled build in
 * dist/. `npm test` builds first; this rebuilds once when dist/ is missing or
 * older than the sources, so `npx vitest` on its own works too.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** What users run: the entry of the bundled CLI (see runtime/cli/bundle.ts and loader-main.ts). */
export const BUILT_CLI = path.join(root, 'dist/apiary.mjs');
/** The bundle itself, which BUILT_CLI runs through V8's code cache. */
export const BUILT_BUNDLE = path.join(root, 'dist/apiary.cjs');

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(full)).mtimeMs);
  }
  return newest;
}

export default async function setup(): Promise<() => Promise<void>> {
  // The nodes tests start leave run files (runtime/cli/run-file.ts): in a folder of this run, not the user's, so a
  // test never finds a node the user runs, and the user's `apiary status` never finds a test's.
  const runtimeDir = await mkdtemp(path.join(os.tmpdir(), 'apiary-test-runtime-'));
  process.env.XDG_RUNTIME_DIR = runtimeDir;
  // The nodes tests start share one code cache (runtime/cli/code-cache.ts), of this run, not the user's.
  process.env.APIARY_CODE_CACHE_DIR = path.join(runtimeDir, 'code-cache');
  const teardown = () => rm(runtimeDir, { recursive: true, force: true });
  await build().then(buildPalette).catch(async (err: unknown) => {
    await teardown();
    throw err;
  });
  return teardown;
}

/**
 * The Node-RED palette (flows/node-red-apiary), built once per run as `npm run build` builds it (under a second),
 * so its tests, in parallel processes, all load the same finished bundle.
 */
async function buildPalette(): Promise<void> {
  try {
    await promisify(execFile)(process.execPath, [path.join(root, 'flows/node-red-apiary/build.mjs')], { cwd: root });
  } catch (err) {
    throw new Error(`the Node-RED palette's build failed; run \`npm run build\`:\n${String((err as { stderr?: string }).stderr ?? err)}`);
  }
}

async function build(): Promise<void> {
  const sources = Math.max(...(await Promise.all(['runtime', 'devices', 'models'].map((d) => newestSource(path.join(root, d))))));
  const built = await stat(BUILT_CLI).then((s) => s.mtimeMs, () => -1);
  if (built >= sources) return;
  try {
    await promisify(execFile)('npm', ['run', 'build'], { cwd: root });
  } catch (err) {
    throw new Error(`the build failed, and child-process tests need it; run \`npm run build\`:\n${String((err as { stdout?: string }).stdout ?? err)}`);
  }
}
