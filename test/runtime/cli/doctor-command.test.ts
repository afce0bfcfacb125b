/** `apiary doctor`: through the compiled CLI as a user runs it, and in-process with a native probe that dies by SIGILL. */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_CACHE_FILE } from '../../../models/inference/probe-cache.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { doctorReport, formatDoctor, type DoctorReport } from '../../../runtime/cli/doctor-command.js';
import { apiary } from '../../support/cli.js';

describe('apiary doctor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-'));
    await mkdir(path.join(dir, 'data'));
    await writeFile(path.join(dir, 'apiary.yaml'), 'node: { dataDir: data }\n');
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('--json: both backends work here, agree on the shipped models, and the node would use onnxruntime-node', async () => {
    const { code, stdout, stderr } = await apiary(['doctor', '--json'], dir);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.ok).toBe(true);
    expect(report.platform).toMatchObject({ os: process.platform, arch: process.arch, node: process.versions.node });
    expect(report.backends.map((b) => [b.name, b.ok])).toEqual([['onnxruntime-node', true], ['onnxruntime-web', true]]);
    for (const backend of report.backends) expect(backend.models.map((m) => [m.name, m.ok])).toEqual([['hive-sound', true], ['hive-thermal', true]]);
    expect(report.agreement.map((a) => [a.model, a.agree])).toEqual([['hive-sound', true], ['hive-thermal', true]]);
    expect(report.selected).toMatchObject({ preference: 'auto', backend: 'onnxruntime-node' });
    expect(report.models.map((m) => [m.name, m.ok])).toEqual([['hive-sound', true], ['hive-thermal', true]]);
    // The fresh verdict replaced the node's cache in its (existing) data dir.
    expect(report.cache?.updated).toBe(true);
    expect(existsSync(path.join(dir, 'data', PROBE_CACHE_FILE))).toBe(true);
  });

  it('prints a human report naming each backend, its verdict and the one the node would use', async () => {
    const { code, stdout } = await apiary(['doctor'], dir);
    expect(code).toBe(0);
    expect(stdout).toMatch(/onnxruntime-node\s+works/);
    expect(stdout).toMatch(/onnxruntime-web\s+works/);
    expect(stdout).toContain('this node would use: onnxruntime-node (models.backend: auto');
    expect(stdout).toMatch(/hive-sound\s+0\.1\.0\s+sha256 [0-9a-f]{12}\s+hash ok/);
    expect(stdout).toContain('ok: at least one backend works');
    expect(stdout).not.toContain('voice (optional'); // voice is off in this config
  });

  it('with voice on and none of its programs on PATH: the voice section names each, with one apt line, and the doctor still passes', async () => {
    await writeFile(path.join(dir, 'voice.yaml'), 'node: { dataDir: data }\nvoice: { enabled: true, pocketsphinx: { modelDir: /nonexistent } }\n');
    const empty = path.join(dir, 'empty-bin');
    await mkdir(empty, { recursive: true });
    const { code, stdout } = await apiary(['doctor', '--config', 'voice.yaml'], dir, { PATH: empty });
    expect(code).toBe(0);
    expect(stdout).toContain('voice (optional: the node runs without it)');
    expect(stdout).toMatch(/pocketsphinx\s+WARN: not installed/);
    expect(stdout).toMatch(/espeak-ng\s+WARN: not installed/);
    expect(stdout).toContain('to install everything voice needs: sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng alsa-utils');
  });
});

describe('doctorReport with a native runtime that dies by SIGILL', () => {
  let dir: string;
  let sigill: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-sigill-'));
    sigill = path.join(dir, 'sigill.mjs');
    await writeFile(sigill, "process.kill(process.pid, 'SIGILL');\n");
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('reports the crash, still passes on WASM, and says auto falls back to it', async () => {
    const config = parseConfig({ node: { dataDir: path.join(dir, 'data') } });
    const report = await doctorReport(config, { probe: { argv: [sigill] } });
    const [native, web] = report.backends;
    expect(native?.ok).toBe(false);
    expect(native?.reason).toContain('SIGILL (illegal instruction');
    expect(web?.ok).toBe(true);
    expect(report.ok).toBe(true);
    expect(report.agreement).toEqual([]);
    expect(report.selected).toMatchObject({ backend: 'onnxruntime-web' });
    expect(report.cache?.updated).toBe(false); // the data dir does not exist: the doctor does not create it
    const text = formatDoctor(report);
    expect(text).toMatch(/onnxruntime-node\s+FAILS/);
    expect(text).toContain('this node would use: onnxruntime-web');
  });

  it('warns when the config pins the backend that fails', async () => {
    const config = parseConfig({ node: { dataDir: path.join(dir, 'data') }, models: { backend: 'onnxruntime-node' } });
    const report = await doctorReport(config, { probe: { argv: [sigill] } });
    expect(report.selected?.backend).toBe('onnxruntime-node');
    expect(report.selected?.reason).toContain('does NOT work here');
  });
});
