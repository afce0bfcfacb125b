/**
 * Reads, migrates, validates and freezes the node's config. Every problem
 * names the field, the value found and what to write instead; the node does
 * not start with a config it does not understand.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { deepFreeze } from '../deep-freeze.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { configSchema, type ApiaryConfig } from './schema.js';
import { migrateConfig, type ConfigMigration } from './migrations.js';
import { valueAt } from '../value-at.js';
import { configSearchFromEnv, firstExisting, type ConfigSearch } from './config-search.js';

export const DEFAULT_CONFIG_FILE = 'apiary.yaml';

/** CLI flags that override the file: validated like the file itself. */
export interface ConfigOverrides {
  port?: number;
  dataDir?: string;
  speed?: number;
  host?: string;
}

export interface LoadedConfig {
  readonly config: ApiaryConfig;
  /** The file read, or undefined when running on built-in defaults. */
  readonly file: string | undefined;
  /**
   * One line per migration applied to the file's contents, in memory only: the
   * file on disk is unchanged. The caller logs them (`apiary config migrate` rewrites the file).
   */
  readonly migrated: readonly string[];
}

export interface LoadConfigOptions {
  file?: string;
  overrides?: ConfigOverrides;
  cwd?: string;
  /** The migrations to apply; tests pass their own, everything else the real list. */
  migrations?: readonly ConfigMigration[];
  /** Where to look without --config, instead of ./apiary.yaml; default: APIARY_CONFIG_PATH and APIARY_DATA_DIR (config-search.ts). */
  search?: ConfigSearch;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const search = options.search ?? configSearchFromEnv();
  let file: string | undefined;
  let raw: unknown = {};
  // The search's data dir applies only to a config found by the search, or to none found by it.
  let searched = false;
  if (options.file !== undefined) {
    file = path.resolve(cwd, options.file);
    if (!existsSync(file)) {
      throw new ApiaryError(ErrorCodes.CONFIG_NOT_FOUND, `config file ${file} does not exist`, {
        hint: `create one with \`apiary init --config ${options.file}\`, or leave out --config to run on the defaults`,
      });
    }
  } else if (search.files.length > 0) {
    // An installed `apiary` serves the system's node: its search path replaces ./apiary.yaml (--config still wins).
    searched = true;
    file = firstExisting(search.files);
  } else if (existsSync(path.resolve(cwd, DEFAULT_CONFIG_FILE))) {
    file = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  }
  let migrated: readonly string[] = [];
  if (file !== undefined) {
    // Migrated before the overrides, which are written in the current format.
    const result = migrateConfig(readConfigFile(file), options.migrations, file);
    raw = result.raw;
    migrated = result.applied;
  }
  const overrides = { ...options.overrides };
  if (searched && search.dataDir !== undefined && overrides.dataDir === undefined && valueAt(raw, ['node', 'dataDir']) === undefined) overrides.dataDir = search.dataDir;
  const config = validateConfig(applyOverrides(raw, overrides), file ?? 'built-in defaults');
  return { config: resolvePaths(config, file ? path.dirname(file) : cwd), file, migrated };
}

/** What to log after loading: one line per migration applied, then that the file itself was left alone. */
export function migrationNotes(loaded: LoadedConfig): string[] {
  if (loaded.migrated.length === 0 || loaded.file === undefined) return [];
  return [...loaded.migrated, `${loaded.file} is unchanged on disk: \`apiary config migrate --write\` rewrites it in the current format (keeping a .bak copy)`];
}

/**
 * Migrates an already-parsed config object to the current format, then
 * validates it; throws CONFIG_INVALID listing every problem.
 */
export function parseConfig(raw: unknown, source = 'config'): ApiaryConfig {
  return validateConfig(migrateConfig(raw ?? {}, undefined, source).raw, source);
}

/** Schema validation only: `raw` must already be in the current format (migrateConfig). */
export function validateConfig(raw: unknown, source: string): ApiaryConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => describeIssue(issue, raw));
    throw new ApiaryError(
      ErrorCodes.CONFIG_INVALID,
      `${source} is not valid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { hint: 'correct the fields named above; `apiary init` writes a commented default config to start from' },
    );
  }
  return deepFreeze(result.data);
}

/** The document in a config file, as written: not migrated, not validated. */
export function readConfigFile(file: string): unknown {
  return parseYaml(readFileSync(file, 'utf8'), file);
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new ApiaryError(ErrorCodes.CONFIG_PARSE, `config file ${file} is not valid YAML: ${first?.message ?? 'unknown error'}`, {
      hint: 'fix the YAML syntax at the line shown (indent with spaces, one key per line)',
    });
  }
  return doc.toJS() ?? {};
}

function applyOverrides(raw: unknown, overrides: ConfigOverrides): unknown {
  const base = isRecord(raw) ? structuredClone(raw) : raw;
  if (!isRecord(base)) return base;
  const section = (name: string): Record<string, unknown> => {
    const existing = base[name];
    if (isRecord(existing)) return existing;
    const created: Record<string, unknown> = {};
    base[name] = created;
    return created;
  };
  if (overrides.port !== undefined) section('broker').port = overrides.port;
  if (overrides.host !== undefined) section('broker').host = overrides.host;
  if (overrides.dataDir !== undefined) section('node').dataDir = overrides.dataDir;
  if (overrides.speed !== undefined) {
    const device = section('device');
    const simulation = isRecord(device.simulation) ? device.simulation : (device.simulation = {});
    simulation.speed = overrides.speed;
  }
  return base;
}

/** Relative paths in a config file are relative to that file, not to the cwd. */
function resolvePaths(config: ApiaryConfig, baseDir: string): ApiaryConfig {
  const dataDir = path.resolve(baseDir, config.node.dataDir);
  const modelsDir = config.models.dir === undefined ? undefined : path.resolve(baseDir, config.models.dir);
  const resolve = (file: string | undefined) => (file === undefined ? undefined : path.resolve(baseDir, file));
  const owner = { keyFile: resolve(config.mesh.owner.keyFile), certificateFile: resolve(config.mesh.owner.certificateFile) };
  return deepFreeze({
    ...config,
    node: { ...config.node, dataDir },
    models: { ...config.models, ...(modelsDir === undefined ? {} : { dir: modelsDir }) },
    broker: { ...config.broker, ...(config.broker.tls ? { tls: { ...config.broker.tls, certificateFile: path.resolve(baseDir, config.broker.tls.certificateFile), keyFile: path.resolve(baseDir, config.broker.tls.keyFile) } } : {}) },
    mcp: { ...config.mcp, http: { ...config.mcp.http, ...(config.mcp.http.tls ? { tls: { certificateFile: path.resolve(baseDir, config.mcp.http.tls.certificateFile), keyFile: path.resolve(baseDir, config.mcp.http.tls.keyFile) } } : {}) } },
    mesh: {
      ...config.mesh,
      owner: Object.fromEntries(Object.entries(owner).filter(([, v]) => v !== undefined)),
      neighbours: config.mesh.neighbours.map((n) => (n.tlsCertificate === undefined ? n : { ...n, tlsCertificate: path.resolve(baseDir, n.tlsCertificate) })),
    },
  });
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const fieldPath = issue.path.map(String);
  const field = fieldPath.length > 0 ? fieldPath.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = fieldPath.length > 0 ? `in "${field}"` : 'at the top level';
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} ${where}: check the spelling against \`apiary init\`'s config, or remove ${issue.keys.length > 1 ? 'them' : 'it'}`;
  }
  const value = valueAt(raw, issue.path);
  const got = value === undefined ? 'nothing (the field is missing)' : JSON.stringify(value);
  return `field "${field}": got ${got}; ${issue.message}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
