/**
 * The migration machinery, on migration lists made up for the test: the real
 * list is empty until a release renames a field.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG_VERSION, MIGRATIONS, latestVersion, migrateConfig, type ConfigMigration } from '../../../runtime/config/migrations.js';
import { ErrorCodes, isApiaryError, type ApiaryError } from '../../../runtime/errors.js';
import { renameField } from '../../support/config-migrations.js';

/** A made-up history: version 1 called the node's name `node.title`, version 2 calls it `node.name`. */
const renameTitle = renameField('node', 'title', 'name');
/** ...and version 3 moved `logLevel` into `log.level`. */
const moveLogLevel: ConfigMigration = {
  from: 2,
  to: 3,
  describe: 'logLevel moved to log.level',
  migrate(raw) {
    const { logLevel, ...rest } = raw as Record<string, unknown>;
    return logLevel === undefined ? rest : { ...rest, log: { level: logLevel } };
  },
};

function refusal(run: () => unknown): ApiaryError {
  try {
    run();
  } catch (err) {
    if (isApiaryError(err)) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('config migrations', () => {
  it('this build reads version 1, the first, and has nothing to migrate yet', () => {
    expect(CONFIG_VERSION).toBe(1);
    expect(MIGRATIONS).toEqual([]);
    expect(migrateConfig({ node: { name: 'x' } })).toEqual({ raw: { node: { name: 'x' }, version: 1 }, from: 1, to: 1, applied: [] });
    expect(migrateConfig({ version: 1 })).toEqual({ raw: { version: 1 }, from: 1, to: 1, applied: [] });
  });

  it('migrates a version 1 document (no version field) to version 2, leaving the input alone', () => {
    const input = { node: { title: 'Hive 3' } };
    const result = migrateConfig(input, [renameTitle]);
    expect(result).toEqual({
      raw: { version: 2, node: { name: 'Hive 3' } },
      from: 1,
      to: 2,
      applied: ['config migrated from version 1 to 2: node.title renamed to node.name'],
    });
    expect(input).toEqual({ node: { title: 'Hive 3' } });
    // An explicit version 1 is the same as none.
    expect(migrateConfig({ version: 1, node: { title: 'Hive 3' } }, [renameTitle]).raw).toEqual(result.raw);
  });

  it('runs a chain in order, from the version the document says it is in', () => {
    const chain = [renameTitle, moveLogLevel];
    const fromOne = migrateConfig({ node: { title: 'a' }, logLevel: 'debug' }, chain);
    expect(fromOne.raw).toEqual({ version: 3, node: { name: 'a' }, log: { level: 'debug' } });
    expect(fromOne.applied).toEqual([
      'config migrated from version 1 to 2: node.title renamed to node.name',
      'config migrated from version 2 to 3: logLevel moved to log.level',
    ]);
    // A version 2 document already says node.name: the first migration must not run on it.
    const fromTwo = migrateConfig({ version: 2, node: { name: 'b', title: 'not a v1 field here' }, logLevel: 'warn' }, chain);
    expect(fromTwo.raw).toEqual({ version: 3, node: { name: 'b', title: 'not a v1 field here' }, log: { level: 'warn' } });
    expect(fromTwo).toMatchObject({ from: 2, to: 3, applied: ['config migrated from version 2 to 3: logLevel moved to log.level'] });
    expect(migrateConfig({ version: 3, logLevel: 'kept' }, chain)).toEqual({ raw: { version: 3, logLevel: 'kept' }, from: 3, to: 3, applied: [] });
  });

  it('refuses a document from a newer Apiary with its own code and the fix', () => {
    const err = refusal(() => migrateConfig({ version: 2 }, MIGRATIONS, 'hive.yaml'));
    expect(err.code).toBe(ErrorCodes.CONFIG_VERSION_UNSUPPORTED);
    expect(err.message).toBe('hive.yaml has config format version 2; this build of Apiary reads up to version 1');
    expect(err.hint).toBe('this config was written for a newer Apiary (version 2); this build reads up to 1: update Apiary or use a config for this version');
    const chained = refusal(() => migrateConfig({ version: 4 }, [renameTitle, moveLogLevel]));
    expect(chained.code).toBe(ErrorCodes.CONFIG_VERSION_UNSUPPORTED);
    expect(chained.hint).toContain('(version 4); this build reads up to 3');
  });

  it('refuses a version that is not a whole number from 1 on, naming the field', () => {
    for (const [version, shown] of [[-1, '-1'], [0, '0'], [1.5, '1.5'], ['1', '"1"'], [true, 'true'], [null, 'null']] as const) {
      const err = refusal(() => migrateConfig({ version }, [renameTitle], 'hive.yaml'));
      expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
      expect(err.message).toContain(`field "version": got ${shown}; expected a whole number from 1 to 2`);
      expect(err.message).toMatch(/^hive\.yaml is not valid \(1 problem\)/);
      expect(err.hint).toContain('version: 2');
    }
  });

  it('says which migration failed when one throws on a document', () => {
    const strict: ConfigMigration = { ...renameTitle, migrate: () => { throw new Error('node.title must be a string'); } };
    const err = refusal(() => migrateConfig({ node: { title: 7 } }, [strict], 'hive.yaml'));
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toBe('hive.yaml could not be migrated from version 1 to 2 (node.title renamed to node.name): node.title must be a string');
  });

  it('leaves a document that is not an object to the schema', () => {
    expect(migrateConfig(['a'], [renameTitle])).toEqual({ raw: ['a'], from: 2, to: 2, applied: [] });
  });

  it('rejects a migration list that does not step one version at a time from 1', () => {
    expect(latestVersion([renameTitle, moveLogLevel])).toBe(3);
    expect(() => latestVersion([moveLogLevel])).toThrow('config migration 0 goes from 2 to 3; expected 1 to 2');
    expect(() => migrateConfig({}, [renameTitle, { ...moveLogLevel, to: 4 }])).toThrow('config migration 1 goes from 2 to 4; expected 2 to 3');
  });
});
