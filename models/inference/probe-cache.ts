/**
 * The probe's verdict, kept per platform in `<dataDir>/inference-probe.json`,
 * so a node spawns the probe once, not at every start. The key names what
 * decides whether the addon runs (OS, CPU architecture and model and its
 * feature flags, Node.js, onnxruntime-node): when any of it changes, the
 * probe runs again. A file that cannot be read back is logged and replaced.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Counters } from '../../runtime/counters.js';
import { describeError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { writeFileAtomic } from '../../runtime/storage/atomic-json-file.js';
import { probeNativeBackend, probeVerdictSchema, type ProbeOptions, type ProbeVerdict } from './backend-probe.js';
import { errorText } from './ort-session.js';

export const PROBE_CACHE_FILE = 'inference-probe.json';
const CACHE_VERSION = 1;

const probeKeySchema = z.strictObject({
  platform: z.string(),
  arch: z.string(),
  node: z.string(),
  onnxruntimeNode: z.string(),
  cpu: z.string(),
});
export type ProbeKey = z.infer<typeof probeKeySchema>;

const cacheSchema = z.strictObject({
  version: z.literal(CACHE_VERSION),
  key: probeKeySchema,
  at: z.string(),
  verdict: probeVerdictSchema,
});

/** The installed version of a package, found from its entry point (onnxruntime-web does not export its package.json). */
export function installedVersion(pkg: string): string {
  try {
    let dir = path.dirname(createRequire(import.meta.url).resolve(pkg));
    for (;;) {
      const manifest = path.join(dir, 'package.json');
      if (existsSync(manifest)) {
        const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
        if (name === pkg) return version ?? '?';
      }
      const parent = path.dirname(dir);
      if (parent === dir) return '?';
      dir = parent;
    }
  } catch {
    return 'not installed';
  }
}

/**
 * The CPU as /proc/cpuinfo names it (x86 "model name"; ARM "Model"/"Hardware"
 * and "CPU part"), plus a short hash of its feature flags, which is what an
 * illegal instruction depends on. Elsewhere, os.cpus().
 */
export function cpuDescription(): string {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim();
  const name = field('model name') ?? field('Model') ?? field('Hardware') ?? os.cpus()[0]?.model ?? 'unknown';
  const part = field('CPU implementer') && field('CPU part') ? ` (implementer ${field('CPU implementer')}, part ${field('CPU part')})` : '';
  const flags = field('flags') ?? field('Features') ?? '';
  return `${name}${part}, features ${createHash('sha256').update(flags).digest('hex').slice(0, 12)}`;
}

export function probeKey(): ProbeKey {
  return { platform: process.platform, arch: process.arch, node: process.versions.node, onnxruntimeNode: installedVersion('onnxruntime-node'), cpu: cpuDescription() };
}

const sameKey = (a: ProbeKey, b: ProbeKey) => (Object.keys(a) as (keyof ProbeKey)[]).every((k) => a[k] === b[k]);

export type CacheRead =
  | { readonly state: 'hit'; readonly verdict: ProbeVerdict; readonly at: string }
  | { readonly state: 'missing' | 'stale' }
  | { readonly state: 'corrupt'; readonly why: string };

export async function readProbeCache(dataDir: string, key: ProbeKey): Promise<CacheRead> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, PROBE_CACHE_FILE), 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? { state: 'missing' } : { state: 'corrupt', why: errorText(err) };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { state: 'corrupt', why: `not valid JSON (${errorText(err)})` };
  }
  const parsed = cacheSchema.safeParse(json);
  if (!parsed.success) return { state: 'corrupt', why: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  return sameKey(parsed.data.key, key) ? { state: 'hit', verdict: parsed.data.verdict, at: parsed.data.at } : { state: 'stale' };
}

export async function writeProbeCache(dataDir: string, key: ProbeKey, verdict: ProbeVerdict): Promise<void> {
  const body = { version: CACHE_VERSION, key, at: new Date().toISOString(), verdict };
  await writeFileAtomic(path.join(dataDir, PROBE_CACHE_FILE), `${JSON.stringify(body, null, 2)}\n`, { mode: 0o644 });
}

export interface CachedProbeOptions {
  readonly dataDir: string;
  readonly probe?: ProbeOptions;
  /** Default: probeKey() of this process. */
  readonly key?: ProbeKey;
  readonly logger?: Logger;
  readonly counters?: Counters;
}

/** The cached verdict for this platform, or a fresh probe (cached when it says something about the platform). */
export async function cachedProbe(options: CachedProbeOptions): Promise<ProbeVerdict & { readonly cached: boolean }> {
  const { dataDir, logger, counters } = options;
  const key = options.key ?? probeKey();
  const read = await readProbeCache(dataDir, key);
  if (read.state === 'hit') return { ...read.verdict, cached: true };
  if (read.state === 'corrupt') {
    counters?.increment('inference.probe_cache_invalid');
    logger?.warn({ file: path.join(dataDir, PROBE_CACHE_FILE), why: read.why }, 'the onnxruntime probe cache is unreadable: probing again and replacing it');
  }
  counters?.increment('inference.probe_runs');
  const verdict = await probeNativeBackend(options.probe);
  if (verdict.cacheable) {
    // A cache we cannot write only costs a probe at the next start.
    await writeProbeCache(dataDir, key, verdict).catch((err: unknown) => logger?.warn({ err: describeError(err) }, 'could not save the onnxruntime probe verdict'));
  }
  return { ...verdict, cached: false };
}
