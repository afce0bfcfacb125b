/**
 * The packaged app against the git checkout, natively (issue 12's benchmark):
 * the .deb for this machine's architecture is built with `npm run package`'s
 * script (gzip) and extracted, then its dist/launcher.mjs (as /usr/bin/apiary
 * runs it; it loads dist/apiary.mjs, with the pruned production node_modules
 * beside it) and the checkout's dist/apiary.mjs (with the full dev tree)
 * start in turns, each cold (a new data dir), with the same
 * simulated config. Start-up to the "Apiary node started" line, the first
 * reading and the first model output on MQTT, and the RSS at that output.
 * `npm run bench -- --only packaged`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageApp, runApp, smokeConfig, type AppRun } from './arm64.js';
import { NODE_MAIN } from './processes.js';

const run = promisify(execFile);
const TIMEOUT_MS = 60_000;
/** Node's `process.arch` -> the Debian architecture the package is built for. */
const DEB_ARCH: Partial<Record<string, 'amd64' | 'arm64'>> = { x64: 'amd64', arm64: 'arm64' };

export interface PackagedResults {
  readonly arch: 'amd64' | 'arm64';
  readonly packaged: AppRun[];
  readonly checkout: AppRun[];
}

export type Side = 'packaged' | 'checkout';

/** `runs` cold starts of each, alternating which goes first; undefined (and says why) where no package can be built. */
export async function measurePackaged(tmp: string, runs: number, progress: (line: string) => void): Promise<PackagedResults | undefined> {
  const arch = DEB_ARCH[process.arch];
  if (!arch) {
    progress(`packaged: skipped, no .deb is built for ${process.arch}`);
    return undefined;
  }
  try {
    await run('dpkg-deb', ['--version']);
  } catch {
    progress('packaged: skipped, dpkg-deb is not installed (Debian package `dpkg`)');
    return undefined;
  }
  progress(`packaged: building the ${arch} .deb (gzip) and extracting it`);
  const app = await packageApp(path.join(tmp, `packaged-${arch}-deb`), arch);
  // The packaged side starts as /usr/bin/apiary does: through the launcher, which picks the release (here, the packaged one).
  const bundles: Record<Side, string> = { packaged: path.join(app, 'dist', 'launcher.mjs'), checkout: NODE_MAIN };
  const results: PackagedResults = { arch, packaged: [], checkout: [] };
  for (let i = 1; i <= runs; i += 1) {
    const order: Side[] = i % 2 === 1 ? ['packaged', 'checkout'] : ['checkout', 'packaged'];
    for (const side of order) {
      const configFile = path.join(tmp, `packaged-${side}-${i}.yaml`);
      await writeFile(configFile, smokeConfig(path.join(tmp, `packaged-data-${side}-${i}`), 'onnxruntime-node'));
      const r = await runApp({ command: process.execPath, prefix: [], bundle: bundles[side], configFile, timeoutMs: TIMEOUT_MS });
      results[side].push(r);
      progress(`packaged run ${i}/${runs}, ${side}: started ${r.startedMs.toFixed(0)} ms, first reading ${r.firstReadingMs.toFixed(0)} ms, first model output ${r.firstModelMs.toFixed(0)} ms, RSS ${(r.memory.rssKiB / 1024).toFixed(0)} MB${r.exit.code === 0 ? '' : `, exit ${String(r.exit.code ?? r.exit.signal)}`}`);
    }
  }
  return results;
}
