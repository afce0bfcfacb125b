import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_CONFIG_YAML } from '../../../runtime/config/default-config.js';
import { loadConfig, migrationNotes, parseConfig } from '../../../runtime/config/load-config.js';
import { CONFIG_VERSION } from '../../../runtime/config/migrations.js';
import { ErrorCodes, isApiaryError, type ApiaryError } from '../../../runtime/errors.js';
import { nodeIdFromPublicKey } from '../../../runtime/identity/identity.js';
import { renameField } from '../../support/config-migrations.js';

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

  it('has a format version: the `apiary init` file states the current one, and a file without it is version 1', () => {
    expect((parse(DEFAULT_CONFIG_YAML) as { version: unknown }).version).toBe(CONFIG_VERSION);
    expect(DEFAULT_CONFIG_YAML).toMatch(/^version: 1 +# the config format of this file/m);
    expect(parseConfig({}).version).toBe(1);
    expect(parseConfig({ version: 1, node: { name: 'x' } })).toEqual(parseConfig({ node: { name: 'x' } }));
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

  it('takes a sensor block that only disables it (every sensor field is optional), keeping that sensor\'s own defaults', () => {
    const config = parseConfig({ device: { sensors: { sound: { enabled: false }, weight: { pin: 'A1' }, temperature: { enabled: true } } } });
    expect(config.device.sensors.sound).toEqual({ enabled: false, interval: 10_000, frameSeconds: 1 });
    expect(config.device.sensors.weight).toMatchObject({ enabled: true, interval: 60_000, pin: 'A1', kgPerCount: 0.1, offsetKg: 0 });
    expect(config.device.sensors.temperature).toEqual({ enabled: true, interval: 60_000 });
    expect(config.device.sensors.humidity).toEqual(parseConfig({}).device.sensors.humidity);
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

  it('refuses a config version it does not read: newer with its own code, malformed naming the field', async () => {
    const file = path.join(dir, 'newer.yaml');
    await writeFile(file, 'version: 2\nnode:\n  name: from the future\n');
    expect(() => loadConfig({ file })).toThrow(expect.objectContaining({
      code: ErrorCodes.CONFIG_VERSION_UNSUPPORTED,
      message: `${file} has config format version 2; this build of Apiary reads up to version 1`,
      hint: expect.stringContaining('update Apiary or use a config for this version') as string,
    }) as Error);
    const err = configError({ version: -3, broker: { hots: 'x' } });
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toContain('field "version": got -3; expected a whole number from 1 to 1');
  });

  it('migrates an older file in memory before validating it and before the CLI overrides, and leaves the file alone', async () => {
    // A made-up version 1 that called broker.port `listenPort`; this build (for the test) reads version 2.
    const renamePort = renameField('broker', 'listenPort', 'port');
    const file = path.join(dir, 'old.yaml');
    const text = 'node:\n  dataDir: data\nbroker:\n  listenPort: 1999\n';
    await writeFile(file, text);
    const loaded = loadConfig({ file, migrations: [renamePort] });
    expect(loaded.config.broker.port).toBe(1999);
    expect(loaded.config.version).toBe(2);
    expect(loaded.config.node.dataDir).toBe(path.join(dir, 'data'));
    expect(loaded.migrated).toEqual(['config migrated from version 1 to 2: broker.listenPort renamed to broker.port']);
    expect(migrationNotes(loaded)).toEqual([
      'config migrated from version 1 to 2: broker.listenPort renamed to broker.port',
      `${file} is unchanged on disk: \`apiary config migrate --write\` rewrites it in the current format (keeping a .bak copy)`,
    ]);
    expect(await readFile(file, 'utf8')).toBe(text);
    // The override is in the current format: it wins over the migrated field, not the other way round.
    expect(loadConfig({ file, migrations: [renamePort], overrides: { port: 0 } }).config.broker.port).toBe(0);
    // Without the migration the old field is what it is in this build: unknown.
    expect(() => loadConfig({ file })).toThrow('unknown field "listenPort" in "broker"');
    // A current file, and the built-in defaults, need no note.
    expect(migrationNotes(loadConfig({ cwd: dir }))).toEqual([]);
    await writeFile(file, 'version: 2\nbroker:\n  port: 1999\n');
    expect(loadConfig({ file, migrations: [renamePort] })).toMatchObject({ migrated: [], config: { version: 2, broker: { port: 1999 } } });
  });

  it('refuses a missing file and broken YAML with their own codes', async () => {
    expect(() => loadConfig({ file: path.join(dir, 'nope.yaml') })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_NOT_FOUND }) as Error);
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'broker:\n  port: 1\n  port: 2\n');
    expect(() => loadConfig({ file })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_PARSE }) as Error);
  });
});
