/**
 * `--baseline <dir>` (or APIARY_BENCH_BASELINE): another, already built
 * checkout of Apiary, e.g. a git worktree at the commit before a change. The
 * broker and catch-up sections then also run that checkout's own
 * broker-server.js and catchup-child.js, and the start-up and steady
 * sections its own node (dist/apiary.mjs start, with its own shipped default
 * config), taking turns with ours in the same run, so the machine's drift
 * touches both alike. Its code runs with the
 * node_modules its checkout resolves (for a worktree whose node_modules is a
 * link to this one's: the same, patched, dependencies).
 */
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serviceNodeFlags } from './service-flags.js';

export interface Baseline {
  readonly dir: string;
  /** What the rows call it: the checkout's short commit, else its folder name. */
  readonly label: string;
  readonly brokerServer: string;
  readonly catchupChild: string;
  /** Its bundled CLI, run as `node <apiary> start`. */
  readonly apiary: string;
  /** Its runtime/config/default-config.js (exports DEFAULT_CONFIG_YAML), when it has one. */
  readonly defaultConfig: string | undefined;
}

/** A wrong argument or path: reported as its message alone, without a stack. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const FILES = { brokerServer: 'dist/test/bench/broker-server.js', catchupChild: 'dist/test/bench/catchup-child.js', apiary: 'dist/apiary.mjs' } as const;
const DEFAULT_CONFIG = 'dist/runtime/config/default-config.js';

async function kind(file: string): Promise<'file' | 'dir' | 'other' | 'missing'> {
  try {
    const s = await stat(file);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

function shortCommit(dir: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { timeout: 5_000 }, (err, stdout) => resolve(err ? undefined : stdout.trim() || undefined));
  });
}

/** Checks the checkout and names its files; throws with the path and the fix when it is not usable. */
export async function resolveBaseline(given: string): Promise<Baseline> {
  const dir = path.resolve(given);
  const found = await kind(dir);
  if (found !== 'dir') {
    throw new UsageError(`--baseline ${given}: ${dir} ${found === 'missing' ? 'does not exist' : 'is not a directory'}; give the folder of another checkout of Apiary (e.g. \`git worktree add ../apiary-before <commit>\`), then build it with \`npm run build\` in that checkout`);
  }
  const missing: string[] = [];
  for (const rel of Object.values(FILES)) if ((await kind(path.join(dir, rel))) !== 'file') missing.push(path.join(dir, rel));
  if (missing.length > 0) {
    throw new UsageError(`--baseline ${given}: not a built checkout of Apiary: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing; build it with \`npm run build\` in that checkout (cd ${dir} && npm run build; run npm install there first if it has no node_modules)`);
  }
  const label = (await shortCommit(dir)) ?? path.basename(dir);
  const defaultConfig = path.join(dir, DEFAULT_CONFIG);
  return {
    dir,
    label,
    brokerServer: path.join(dir, FILES.brokerServer),
    catchupChild: path.join(dir, FILES.catchupChild),
    apiary: path.join(dir, FILES.apiary),
    defaultConfig: (await kind(defaultConfig)) === 'file' ? defaultConfig : undefined,
  };
}

/** A node the start-up and steady sections start: ours or the baseline's, each with its own shipped default config. */
export interface NodeSide {
  /** 'now' for ours, the baseline's label for it. */
  readonly label: string;
  readonly main: string;
  readonly configFile: string;
  /** Node.js flags before `main`: those of the checkout's own service unit (service-flags.ts). */
  readonly nodeFlags: readonly string[];
  /**
   * Environment for its node: the bench's own code cache directory
   * (runtime/cli/code-cache.ts), so the first start of a run is the first
   * start of an install and a cache from outside the run is never used.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * The baseline's node, with the default config its own checkout ships (a
 * config of ours may hold keys it does not know). A checkout without
 * default-config.js gets ours, said in `progress`.
 */
export async function baselineNode(baseline: Baseline, tmp: string, ourConfigYaml: string, progress: (line: string) => void): Promise<NodeSide> {
  let yaml: string | undefined;
  if (baseline.defaultConfig) {
    const mod = (await import(pathToFileURL(baseline.defaultConfig).href)) as { DEFAULT_CONFIG_YAML?: unknown };
    if (typeof mod.DEFAULT_CONFIG_YAML === 'string') yaml = mod.DEFAULT_CONFIG_YAML;
  }
  if (yaml === undefined) progress(`baseline ${baseline.label}: no DEFAULT_CONFIG_YAML in ${DEFAULT_CONFIG}; its node gets our shipped config`);
  const configFile = path.join(tmp, 'apiary-baseline.yaml');
  await writeFile(configFile, yaml ?? ourConfigYaml);
  return { label: baseline.label, main: baseline.apiary, configFile, nodeFlags: await serviceNodeFlags(baseline.dir), env: { APIARY_CODE_CACHE_DIR: path.join(tmp, 'code-cache-baseline') } };
}
