/**
 * `apiary config migrate`, and how the commands treat a config's version.
 * The rewrite runs in-process on a made-up migration (the real list is empty
 * while version 1 is the only format); the rest runs the built CLI.
 */
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { migrateConfigFile } from '../../../runtime/cli/config-command.js';
import { validateConfig } from '../../../runtime/config/load-config.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { apiary } from '../../support/cli.js';
import { renameField } from '../../support/config-migrations.js';

/** Made up: version 1 called node.name `node.title`. */
const renameTitle = renameField('node', 'title', 'name');
const OLD = '# my hive\nnode:\n  title: Hive 3   # the one by the hedge\n  dataDir: data\n';

describe('apiary config migrate', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'apiary-config-cmd-')));
    file = path.join(dir, 'apiary.yaml');
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('prints the migrated config and leaves the file alone', async () => {
    await writeFile(file, OLD);
    const result = await migrateConfigFile({ cwd: dir, migrations: [renameTitle] });
    expect(result).toMatchObject({ file, from: 1, to: 2, applied: ['config migrated from version 1 to 2: node.title renamed to node.name'] });
    expect(result.backup).toBeUndefined();
    expect(result.yaml).toContain('# Migrated by `apiary config migrate` from config format version 1 to 2.');
    expect(parse(result.yaml ?? '')).toEqual({ version: 2, node: { name: 'Hive 3', dataDir: 'data' } });
    expect(validateConfig(parse(result.yaml ?? ''), 'migrated').node.name).toBe('Hive 3');
    expect(await readFile(file, 'utf8')).toBe(OLD);
    expect(existsSync(`${file}.bak`)).toBe(false);
  });

  it('with --write replaces the file, keeping the original as .bak with the same mode, and refuses to overwrite a .bak', async () => {
    await writeFile(file, OLD);
    await chmod(file, 0o640);
    const result = await migrateConfigFile({ cwd: dir, write: true, migrations: [renameTitle] });
    expect(result.backup).toBe(`${file}.bak`);
    expect(await readFile(`${file}.bak`, 'utf8')).toBe(OLD);
    const written = await readFile(file, 'utf8');
    expect(written).toBe(result.yaml);
    expect(written).toContain('it is kept as apiary.yaml.bak');
    expect(parse(written)).toEqual({ version: 2, node: { name: 'Hive 3', dataDir: 'data' } });
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect((await stat(`${file}.bak`)).mode & 0o777).toBe(0o640);
    // Now current: nothing to do, nothing written.
    expect(await migrateConfigFile({ cwd: dir, write: true, migrations: [renameTitle] })).toEqual({ file, from: 2, to: 2, applied: [] });
    expect(await readFile(file, 'utf8')).toBe(written);
    // An old file again, with the earlier .bak still there: that copy is not overwritten.
    await writeFile(file, OLD);
    await expect(migrateConfigFile({ cwd: dir, write: true, migrations: [renameTitle] })).rejects.toMatchObject({
      code: ErrorCodes.USAGE_INVALID,
      message: `${file}.bak already exists; it would be overwritten by the copy of the original`,
    });
    expect(await readFile(file, 'utf8')).toBe(OLD);
  });

  it('rewrites a linked config where it lives, and keeps the link', async () => {
    await mkdir(path.join(dir, 'configs'));
    const real = path.join(dir, 'configs', 'hive.yaml');
    await writeFile(real, OLD);
    await symlink(real, file);
    const result = await migrateConfigFile({ cwd: dir, write: true, migrations: [renameTitle] });
    expect(result.backup).toBe(`${real}.bak`);
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect(parse(await readFile(real, 'utf8'))).toEqual({ version: 2, node: { name: 'Hive 3', dataDir: 'data' } });
    expect(await readFile(`${real}.bak`, 'utf8')).toBe(OLD);
  });

  it('writes nothing when the migrated config would not load', async () => {
    await writeFile(file, 'node:\n  title: ""\n');
    await expect(migrateConfigFile({ cwd: dir, write: true, migrations: [renameTitle] })).rejects.toMatchObject({
      code: ErrorCodes.CONFIG_INVALID,
      message: expect.stringContaining('field "node.name": got ""') as string,
    });
    expect(await readFile(file, 'utf8')).toBe('node:\n  title: ""\n');
    expect(existsSync(`${file}.bak`)).toBe(false);
  });

  it('as a command: a current file needs nothing, a newer one is refused by every command with exit 78', async () => {
    expect((await apiary(['init'], dir)).code).toBe(0);
    const current = await apiary(['config', 'migrate'], dir);
    expect(current).toMatchObject({ code: 0, stdout: '' });
    expect(current.stderr).toBe(`${file} is in config format version 1, the current one: nothing to migrate\n`);
    // The version line is only a statement: commands read the init file as before, with no note.
    const id = await apiary(['id', '--data-dir', 'data'], dir);
    expect(id.code).toBe(0);
    expect(id.stdout).toContain('node id:');
    expect(id.stderr).toBe('');

    await writeFile(path.join(dir, 'newer.yaml'), 'version: 2\n');
    for (const args of [['config', 'migrate', '--config', 'newer.yaml'], ['id', '--config', 'newer.yaml'], ['start', '--config', 'newer.yaml']]) {
      const newer = await apiary(args, dir);
      expect(newer.code).toBe(78);
      expect(newer.stderr).toContain(`APIARY_CONFIG_VERSION_UNSUPPORTED: ${path.join(dir, 'newer.yaml')} has config format version 2`);
      expect(newer.stderr).toContain('fix: this config was written for a newer Apiary (version 2); this build reads up to 1');
    }
    await writeFile(path.join(dir, 'bad.yaml'), 'version: one\n');
    const bad = await apiary(['doctor', '--config', 'bad.yaml'], dir);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('field "version": got "one"; expected a whole number from 1 to 1');
  });
});
