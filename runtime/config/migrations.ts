/**
 * Config format versions and the migrations between them. A config file
 * says which format it was written in (`version`, absent = 1); before the
 * schema sees it, the raw document is carried forward one version at a time,
 * so a file written for an older Apiary keeps loading after a field is
 * renamed or moved. The file on disk is never rewritten here.
 *
 * Policy: a release that renames, moves or changes the meaning of a field
 * appends one migration here (which bumps CONFIG_VERSION) and updates the
 * `apiary init` template; nothing is ever dropped silently.
 */
import { ApiaryError, ErrorCodes } from '../errors.js';

export interface ConfigMigration {
  readonly from: number;
  readonly to: number;
  /** One line for the log: what changed, e.g. `broker.tls.cert renamed to broker.tls.certificateFile`. */
  readonly describe: string;
  /** Takes a document of version `from` (a private copy: it may be changed in place) and returns it in version `to`. */
  migrate(raw: unknown): unknown;
}

/** In order, from version 1 on. Empty: version 1 is the first format. */
export const MIGRATIONS: readonly ConfigMigration[] = [];

/** The format version a chain of migrations ends at; throws if the chain has a gap, so a broken list fails at start-up and in every test. */
export function latestVersion(migrations: readonly ConfigMigration[]): number {
  migrations.forEach((m, i) => {
    const from = i + 1;
    if (m.from !== from || m.to !== from + 1) {
      throw new Error(`config migration ${i} goes from ${m.from} to ${m.to}; expected ${from} to ${from + 1} (the list must step one version at a time from 1)`);
    }
  });
  return migrations.length + 1;
}

/** The config format this build writes and reads; older ones are migrated to it. */
export const CONFIG_VERSION = latestVersion(MIGRATIONS);

export interface MigratedConfig {
  /** The document in the latest format, `version` set; the input is not changed. */
  readonly raw: unknown;
  /** The version the document said it was in (1 when it had no `version`). */
  readonly from: number;
  readonly to: number;
  /** One line per migration applied, for the caller to log; empty when the document was current. */
  readonly applied: readonly string[];
}

/**
 * Carries a parsed config document forward to the latest format. Refuses a
 * `version` that is not a whole number from 1 on (CONFIG_INVALID, naming the
 * field) or newer than this build reads (CONFIG_VERSION_UNSUPPORTED).
 */
export function migrateConfig(raw: unknown, migrations: readonly ConfigMigration[] = MIGRATIONS, source = 'config'): MigratedConfig {
  const latest = latestVersion(migrations);
  // Not an object: nothing to migrate, and the schema says what is wrong with it.
  if (!isRecord(raw)) return { raw, from: latest, to: latest, applied: [] };
  const from = raw.version === undefined ? 1 : raw.version;
  if (typeof from !== 'number' || !Number.isInteger(from) || from < 1) {
    throw new ApiaryError(
      ErrorCodes.CONFIG_INVALID,
      `${source} is not valid (1 problem):\n  - field "version": got ${JSON.stringify(from)}; expected a whole number from 1 to ${latest}, the config format version (leave it out for 1)`,
      { hint: `write \`version: ${latest}\` for a config in this build's format (\`apiary init\` writes one), or the version the file was written for` },
    );
  }
  if (from > latest) {
    throw new ApiaryError(
      ErrorCodes.CONFIG_VERSION_UNSUPPORTED,
      `${source} has config format version ${from}; this build of Apiary reads up to version ${latest}`,
      { hint: `this config was written for a newer Apiary (version ${from}); this build reads up to ${latest}: update Apiary or use a config for this version` },
    );
  }
  let doc: unknown = structuredClone(raw);
  const applied: string[] = [];
  for (const migration of migrations.slice(from - 1)) {
    try {
      doc = migration.migrate(doc);
    } catch (err) {
      throw new ApiaryError(
        ErrorCodes.CONFIG_INVALID,
        `${source} could not be migrated from version ${migration.from} to ${migration.to} (${migration.describe}): ${err instanceof Error ? err.message : String(err)}`,
        { hint: `correct the fields named, or rewrite the config in version ${latest}'s format (\`apiary init\` writes one)`, cause: err },
      );
    }
    if (!isRecord(doc)) throw new Error(`config migration ${migration.from} to ${migration.to} returned ${JSON.stringify(doc)}, not an object`);
    doc.version = migration.to;
    applied.push(`config migrated from version ${migration.from} to ${migration.to}: ${migration.describe}`);
  }
  if (isRecord(doc)) doc.version = latest;
  return { raw: doc, from, to: latest, applied };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
