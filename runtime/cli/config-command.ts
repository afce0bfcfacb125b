/**
 * `apiary config migrate`: a config file in an older format loads anyway
 * (migrated in memory on every start); this carries the file itself forward,
 * so the board's file matches the README and `apiary init` again.
 */
import { existsSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_CONFIG_FILE, readConfigFile, validateConfig } from '../config/load-config.js';
import { migrateConfig, type ConfigMigration } from '../config/migrations.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

export interface ConfigMigrateOptions {
  config?: string;
  write?: boolean;
  cwd?: string;
  /** Tests pass their own list; the command uses the real one. */
  migrations?: readonly ConfigMigration[];
}

export interface ConfigMigrateResult {
  readonly file: string;
  readonly from: number;
  readonly to: number;
  /** One line per migration applied; empty when the file was current (then nothing is written). */
  readonly applied: readonly string[];
  /** The migrated config, when a migration applied. */
  readonly yaml?: string;
  /** Where the original was kept, after --write. */
  readonly backup?: string;
}

export async function migrateConfigFile(options: ConfigMigrateOptions): Promise<ConfigMigrateResult> {
  const file = path.resolve(options.cwd ?? process.cwd(), options.config ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    throw new ApiaryError(ErrorCodes.CONFIG_NOT_FOUND, `config file ${file} does not exist`, { hint: 'name the file to migrate with --config <file>' });
  }
  const { raw, from, to, applied } = migrateConfig(readConfigFile(file), options.migrations, file);
  if (applied.length === 0) return { file, from, to, applied };
  // The result must load before it is offered, let alone written over the original.
  validateConfig(raw, `${file} (migrated to version ${to})`);
  const header = `# Migrated by \`apiary config migrate\` from config format version ${from} to ${to}.\n`;
  if (!options.write) return { file, from, to, applied, yaml: `${header}# Comments of the original are not carried over.\n${stringify(raw)}` };
  // A linked config is rewritten where it lives; the link stays a link.
  const target = await realpath(file);
  const backup = `${target}.bak`;
  if (existsSync(backup)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${backup} already exists; it would be overwritten by the copy of the original`, {
      hint: `move ${path.basename(backup)} away (or delete it if it is not needed), then run this again`,
    });
  }
  const yaml = `${header}# Comments of the original are not carried over; it is kept as ${path.basename(backup)}.\n${stringify(raw)}`;
  const mode = (await stat(target)).mode & 0o777;
  // The copy is durable before the original is replaced, so a power cut leaves at least one of them whole.
  await writeFileAtomic(backup, await readFile(target), { mode });
  await writeFileAtomic(target, yaml, { mode });
  return { file, from, to, applied, yaml, backup };
}

export async function configMigrateCommand(options: ConfigMigrateOptions): Promise<void> {
  const result = await migrateConfigFile(options);
  if (result.applied.length === 0) {
    process.stderr.write(`${result.file} is in config format version ${result.from}, the current one: nothing to migrate\n`);
    return;
  }
  for (const line of result.applied) process.stderr.write(`${line}\n`);
  if (result.backup === undefined) process.stdout.write(result.yaml ?? '');
  else process.stdout.write(`rewrote ${result.file} in config format version ${result.to}; the original is ${result.backup}\n`);
}
