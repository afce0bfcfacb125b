import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_CONFIG_YAML } from '../../../runtime/config/default-config.js';
import { loadConfig, parseConfig } from '../../../runtime/config/load-config.js';
import { ErrorCodes, isApiaryError, type ApiaryError } from '../../../runtime/errors.js';
import { nodeIdFromPublicKey } from '../../../runtime/identity/identity.js';

function configError(raw: unknown): ApiaryError {
  try {
    parseConfig(raw);
  } catch (err) {
    if (isApiaryError(err)) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('config', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-config-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('defaults to one simulated beehive node, broker on 127.0.0.1:1883, data in ./.apiary', () => {
    const config = parseConfig({});
    expect(config.device.kind).toBe('simulated-beehive');
    expect(config.broker).toMatchObject({ enabled: true, host: '127.0.0.1', port: 1883 });
    expect(config.node.dataDir).toBe('./.apiary');
    expect(config.device.sensors.temperature.interval).toBe(60_000);
    expect(config.storage.segmentBytes).toBe(1024 * 1024);
    expect(config.decisions.map((r) => r.id)).toContain('swarming');
  });

  it('the commented file written by `apiary init` means exactly the defaults', () => {
    expect(parseConfig(parse(DEFAULT_CONFIG_YAML))).toEqual(parseConfig({}));
  });

  it('is frozen after validation', () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config.device.sensors.weight)).toBe(true);
    expect(() => { (config.broker as { port: number }).port = 1; }).toThrow(TypeError);
  });

  it('names the field, the value and the fix for a bad duration', () => {
    const err = configError({ device: { sensors: { temperature: { interval: 'often' } } } });
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toContain('field "device.sensors.temperature.interval": got "often"');
    expect(err.message).toMatch(/expected a duration .* like "30s"/);
    expect(err.hint).toContain('apiary init');
  });

  it('reports every problem at once, including misspelt fields', () => {
    const err = configError({ broker: { port: 70000, hots: 'x' }, device: { kind: 'arduino' } });
    expect(err.message).toContain('3 problems');
    expect(err.message).toContain('field "broker.port": got 70000');
    expect(err.message).toContain('unknown field "hots" in "broker"');
    expect(err.message).toContain('field "device.kind": got "arduino"; expected "simulated-beehive"');
  });

  it('checks neighbours: one entry per node, a pinned key that belongs to the node id, mDNS settings', () => {
    const key = 'x'.repeat(43);
    const nodeId = nodeIdFromPublicKey(Buffer.from(key, 'base64url'));
    const ok = { url: 'mqtt://192.168.1.20:1883', nodeId, publicKey: key };
    expect(parseConfig({ mesh: { neighbours: [ok] } }).mesh.neighbours[0]?.publicKey).toBe(key);
    expect(configError({ mesh: { neighbours: [ok, ok] } }).message).toContain(`node ${nodeId} is listed twice`);
    const other = configError({ mesh: { neighbours: [{ ...ok, publicKey: 'y'.repeat(43) }] } }).message;
    expect(other).toContain('field "mesh.neighbours.0.publicKey"');
    expect(other).toContain(`this key belongs to another node than ${nodeId}`);
    expect(parseConfig({}).mesh.discovery).toEqual({ mdns: false, port: 5353 });
    expect(configError({ mesh: { discovery: { mdns: true, interface: 'eth0' } } }).message).toContain('field "mesh.discovery.interface"');
  });

  it('checks rules: one threshold, clear level on the safe side, unique ids', () => {
    const rule = { id: 'hot', input: 'reading.temperature', message: 'hot' };
    expect(configError({ decisions: [rule] }).message).toContain('give exactly one of "above" or "below"');
    expect(configError({ decisions: [{ ...rule, above: 38, clearAt: 39 }] }).message).toContain('field "decisions.0.clearAt"');
    expect(configError({ decisions: [{ ...rule, above: 38 }, { ...rule, above: 39 }] }).message).toContain('duplicate rule id "hot"');
    expect(configError({ decisions: [{ ...rule, above: 1, input: 'temperature' }] }).message).toContain('field "decisions.0.input"');
  });

  it('reads a YAML file, resolves paths against it, and applies CLI overrides', async () => {
    const file = path.join(dir, 'hive.yaml');
    await writeFile(file, 'node:\n  dataDir: data\nbroker:\n  port: 1999\ndevice:\n  simulation:\n    speed: 10\n');
    const { config, file: used } = loadConfig({ file, overrides: { port: 0, speed: 120 } });
    expect(used).toBe(file);
    expect(config.node.dataDir).toBe(path.join(dir, 'data'));
    expect(config.broker.port).toBe(0);
    expect(config.device.simulation.speed).toBe(120);
  });

  it('validates overrides like the file', () => {
    expect(() => loadConfig({ cwd: dir, overrides: { speed: -1 } })).toThrow(/device\.simulation\.speed/);
  });

  it('refuses a missing file and broken YAML with their own codes', async () => {
    expect(() => loadConfig({ file: path.join(dir, 'nope.yaml') })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_NOT_FOUND }) as Error);
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'broker:\n  port: 1\n  port: 2\n');
    expect(() => loadConfig({ file })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_PARSE }) as Error);
  });
});
