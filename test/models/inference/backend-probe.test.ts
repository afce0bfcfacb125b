/**
 * The native-backend probe and the backend choice, with real child
 * processes: the built probe child on this machine, and small scripts that
 * die the ways onnxruntime-node dies on a board it does not suit (SIGILL,
 * SIGSEGV), hang, or answer nonsense. Nothing is mocked: the failing children
 * go through the same spawn-and-judge path as the real probe.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIO_SAMPLE_RATE, audioFeatures } from '../../../models/features/audio-bands.js';
import { probeNativeBackend } from '../../../models/inference/backend-probe.js';
import { PROBE_CACHE_FILE, cachedProbe, probeKey, readProbeCache, type ProbeKey } from '../../../models/inference/probe-cache.js';
import { SelectedInferenceBackend, selectInferenceBackend } from '../../../models/inference/select-backend.js';
import { loadVerifiedModel } from '../../../models/registry/model-runner.js';
import { Counters } from '../../../runtime/counters.js';
import { HIVE_SOUND_DIR, HIVE_THERMAL_DIR, readClip, withTempDir } from '../helpers.js';

/** Children that end the ways a broken native runtime ends; written to a temp dir as .mjs files. */
const CHILDREN = {
  sigill: "process.stderr.write('probe-stage: import\\n'); process.kill(process.pid, 'SIGILL');",
  sigsegv: "process.stderr.write('probe-stage: run self-test\\n'); process.kill(process.pid, 'SIGSEGV');",
  sigkill: "process.kill(process.pid, 'SIGKILL');",
  hang: "process.stderr.write('probe-stage: import\\n'); setInterval(() => {}, 1000);",
  exit3: "process.stderr.write('Error: Cannot find module onnxruntime-node\\n'); process.exit(3);",
  reportsFailure: "console.log(JSON.stringify({ ok: false, runtime: 'onnxruntime-node 1.30.0', error: 'self-test gave [0.3,0.3,0.3]', models: [] })); process.exitCode = 1;",
  garbage: "console.log('hello, not JSON');",
} as const;
type ChildName = keyof typeof CHILDREN;

let scripts: string;
const argv = (name: ChildName) => [path.join(scripts, `${name}.mjs`)];

beforeAll(async () => {
  scripts = await mkdtemp(path.join(os.tmpdir(), 'apiary-probe-children-'));
  for (const [name, body] of Object.entries(CHILDREN)) await writeFile(path.join(scripts, `${name}.mjs`), `${body}\n`);
});
afterAll(async () => {
  await rm(scripts, { recursive: true, force: true });
});

describe('probeNativeBackend', () => {
  it('passes on this machine with the real probe child, running the self-test and the shipped models', async () => {
    const verdict = await probeNativeBackend({ modelDirs: [HIVE_SOUND_DIR, HIVE_THERMAL_DIR] });
    expect(verdict.ok, verdict.reason).toBe(true);
    expect(verdict.runtime).toMatch(/^onnxruntime-node 1\.30\./);
    expect(verdict.reason).toContain('ran the self-test model correctly');
    expect(verdict.cacheable).toBe(true);
    expect(verdict.models.map((m) => [m.name, m.ok, m.outputs?.length])).toEqual([['hive-sound', true, 3], ['hive-thermal', true, 1]]);
  });

  it.each([
    ['sigill', 'SIGILL', 'illegal instruction', 'import'],
    ['sigsegv', 'SIGSEGV', 'segmentation fault', 'run self-test'],
  ] as const)('fails when the child dies by signal (%s), naming the signal, its meaning and the stage', async (child, signal, meaning, stage) => {
    const verdict = await probeNativeBackend({ argv: argv(child) });
    expect(verdict.ok).toBe(false);
    expect(verdict.signal).toBe(signal);
    expect(verdict.reason).toContain(signal);
    expect(verdict.reason).toContain(meaning);
    expect(verdict.reason).toContain(`during "${stage}"`);
    expect(verdict.cacheable).toBe(true);
  });

  it('does not count a kill from outside (the OOM killer, say) against the platform', async () => {
    const verdict = await probeNativeBackend({ argv: argv('sigkill') });
    expect([verdict.ok, verdict.signal, verdict.cacheable]).toEqual([false, 'SIGKILL', false]);
    expect(verdict.reason).toContain('out-of-memory killer');
  });

  it('kills a child that hangs and reports the timeout, which is not cached', async () => {
    const started = performance.now();
    const verdict = await probeNativeBackend({ argv: argv('hang'), timeoutMs: 500 });
    expect(verdict.ok).toBe(false);
    expect(verdict.reason).toContain('no answer within 500 ms');
    expect(verdict.cacheable).toBe(false);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('judges an exit code without a report, a failure report and garbage output', async () => {
    const exit3 = await probeNativeBackend({ argv: argv('exit3') });
    expect([exit3.ok, exit3.exitCode, exit3.cacheable]).toEqual([false, 3, false]);
    expect(exit3.reason).toContain('exited with code 3');
    expect(exit3.reason).toContain('Cannot find module');

    const reported = await probeNativeBackend({ argv: argv('reportsFailure') });
    expect([reported.ok, reported.cacheable]).toEqual([false, true]);
    expect(reported.reason).toContain('self-test gave');

    const garbage = await probeNativeBackend({ argv: argv('garbage') });
    expect([garbage.ok, garbage.cacheable]).toEqual([false, false]);
    expect(garbage.reason).toContain('without a valid report');
  });
});

describe('cachedProbe', () => {
  const key: ProbeKey = { platform: 'linux', arch: 'arm64', node: '20.19.0', onnxruntimeNode: '1.30.0', cpu: 'Cortex-A53, features test' };

  it('probes once per key: the second call reads the cache, a changed key probes again', async () => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const first = await cachedProbe({ dataDir, key, counters, probe: { argv: argv('sigill') } });
      expect([first.ok, first.cached, first.signal]).toEqual([false, false, 'SIGILL']);
      expect(existsSync(path.join(dataDir, PROBE_CACHE_FILE))).toBe(true);
      // The real probe would pass: a verdict still saying SIGILL proves no child ran.
      const second = await cachedProbe({ dataDir, key, counters });
      expect([second.ok, second.cached, second.signal]).toEqual([false, true, 'SIGILL']);
      expect(counters.get('inference.probe_runs')).toBe(1);

      const upgraded = await cachedProbe({ dataDir, key: { ...key, node: '22.12.0' }, counters });
      expect([upgraded.ok, upgraded.cached]).toEqual([true, false]);
      expect(counters.get('inference.probe_runs')).toBe(2);
      const read = await readProbeCache(dataDir, { ...key, node: '22.12.0' });
      expect(read.state === 'hit' && read.verdict.ok).toBe(true);
      expect((await readProbeCache(dataDir, key)).state).toBe('stale');
    });
  });

  it.each([
    ['not JSON', '{"version": 1, "key": '],
    ['the wrong shape', JSON.stringify({ version: 1, key: {}, verdict: { ok: 'yes' } })],
  ])('replaces a cache file that is %s instead of crashing', async (_what, content) => {
    await withTempDir(async (dataDir) => {
      const file = path.join(dataDir, PROBE_CACHE_FILE);
      await writeFile(file, content);
      expect((await readProbeCache(dataDir, key)).state).toBe('corrupt');
      const counters = new Counters();
      const verdict = await cachedProbe({ dataDir, key, counters, probe: { argv: argv('sigill') } });
      expect([verdict.cached, verdict.signal]).toEqual([false, 'SIGILL']);
      expect(counters.get('inference.probe_cache_invalid')).toBe(1);
      expect((await readProbeCache(dataDir, key)).state).toBe('hit');
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, key });
    });
  });

  it('does not cache a timeout: the next start probes again', async () => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const verdict = await cachedProbe({ dataDir, key, counters, probe: { argv: argv('hang'), timeoutMs: 300 } });
      expect(verdict.ok).toBe(false);
      expect(existsSync(path.join(dataDir, PROBE_CACHE_FILE))).toBe(false);
      expect((await cachedProbe({ dataDir, key, counters, probe: { argv: argv('sigill') } })).cached).toBe(false);
      expect(counters.get('inference.probe_runs')).toBe(2);
    });
  });

  it('keys on this platform, CPU and runtime version', () => {
    const own = probeKey();
    expect(own).toMatchObject({ platform: process.platform, arch: process.arch, node: process.versions.node });
    expect(own.onnxruntimeNode).toMatch(/^1\.30\./);
    expect(own.cpu).toMatch(/features [0-9a-f]{12}$/);
  });
});

describe('selectInferenceBackend', () => {
  it('auto: falls back to onnxruntime-web when the native probe dies by SIGILL, and that backend runs the shipped model', async () => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const selection = await selectInferenceBackend({ preference: 'auto', dataDir, counters, probe: { argv: argv('sigill') } });
      expect(selection.backend.name).toBe('onnxruntime-web');
      expect(selection.reason).toContain('SIGILL');
      expect(selection.reason).toContain('using onnxruntime-web (WASM)');
      expect(counters.get('inference.backend_fallback')).toBe(1);
      const model = await loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend: selection.backend });
      try {
        expect((await model.predict(audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE))).label).toBe('swarm');
      } finally {
        await model.close();
      }
    });
  });

  it('auto: takes onnxruntime-node when the real probe passes', async () => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const selection = await selectInferenceBackend({ preference: 'auto', dataDir, counters });
      expect(selection.backend.name).toBe('onnxruntime-node');
      expect(selection.probe?.ok).toBe(true);
      expect(counters.get('inference.backend_fallback')).toBe(0);
    });
  });

  it.each(['onnxruntime-node', 'onnxruntime-web'] as const)('%s: takes it without probing', async (preference) => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const selection = await selectInferenceBackend({ preference, dataDir, counters, probe: { argv: argv('sigill') } });
      expect(selection.backend.name).toBe(preference);
      expect(counters.get('inference.probe_runs')).toBe(0);
    });
  });

  it('SelectedInferenceBackend chooses at the first load, not before', async () => {
    await withTempDir(async (dataDir) => {
      const counters = new Counters();
      const backend = new SelectedInferenceBackend({ preference: 'auto', dataDir, counters, probe: { argv: argv('sigill') } });
      expect(backend.selection).toBeUndefined();
      expect(counters.get('inference.probe_runs')).toBe(0);
      const model = await loadVerifiedModel({ dir: HIVE_THERMAL_DIR, backend });
      await model.close();
      expect(backend.name).toBe('onnxruntime-web');
      expect(backend.selection?.reason).toContain('SIGILL');
      expect(counters.get('inference.probe_runs')).toBe(1);
    });
  });
});
