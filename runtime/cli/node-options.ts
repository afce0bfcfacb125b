/**
 * The options every `apiary` command that reads the config takes, and how a
 * node command finds the running node and asks it (askNode). Shared by the
 * hand-written commands and the ones generated from the command registry.
 */
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CONFIG_FILE, loadConfig, migrationNotes, type ConfigOverrides } from '../config/load-config.js';
import { ErrorCodes, isApiaryError, type ApiaryError } from '../errors.js';
import { requestNode, type NodeReply } from './node-request.js';
import { findRunningNode } from './run-file.js';

/** sysexits.h EX_CONFIG: the config is wrong, retrying will not help. */
export const EXIT_CONFIG = 78;

const CONFIG_ERRORS: readonly string[] = [ErrorCodes.CONFIG_INVALID, ErrorCodes.CONFIG_PARSE, ErrorCodes.CONFIG_NOT_FOUND, ErrorCodes.CONFIG_VERSION_UNSUPPORTED];

/** The config file is missing, unreadable, invalid or of an unknown version. */
export function isConfigError(err: unknown): err is ApiaryError {
  return isApiaryError(err) && CONFIG_ERRORS.includes(err.code);
}

export interface CommonOptions {
  config?: string;
  dataDir?: string;
  port?: number;
  host?: string;
  speed?: number;
}

/** The options of a command sent to a running node. */
export interface NodeOptions extends CommonOptions {
  node?: string;
  timeout?: number;
}

export const integer = (name: string, min: number, max: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
};

/** A time factor above 0 (`--speed`). */
export const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number above 0, e.g. 60 for one simulated minute per second');
  return n;
};

export function withCommonOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', `config file (default: the first of $APIARY_CONFIG_PATH that exists when it is set, as in the .deb, else ./${DEFAULT_CONFIG_FILE} if present; else built-in defaults)`)
    .option('-d, --data-dir <dir>', 'data directory (identity, state, stream logs); overrides node.dataDir')
    .addOption(new Option('-p, --port <port>', 'MQTT broker port, 0 = any free port; overrides broker.port').argParser(integer('port', 0, 65535)))
    .option('--host <host>', 'MQTT broker address to listen on / connect to; overrides broker.host');
}

function overrides(options: CommonOptions): ConfigOverrides {
  return {
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.speed !== undefined ? { speed: options.speed } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
  };
}

/** Loads the config; says on stderr if it was migrated in memory (`start` logs that instead). */
export function load(options: CommonOptions, quiet = false) {
  const loaded = loadConfig({ ...(options.config !== undefined ? { file: options.config } : {}), overrides: overrides(options) });
  if (!quiet) for (const note of migrationNotes(loaded)) process.stderr.write(`apiary: ${note}\n`);
  return loaded;
}

/** `auth`: an owner signature envelope for the node that answers (`apiary mcp`). */
export async function askNode(options: NodeOptions, command: string, args?: Record<string, unknown>, auth?: (nodeId: string) => unknown): Promise<NodeReply> {
  const { config } = load(options);
  const timeoutMs = options.timeout ?? 5000;
  // --port / --host name the broker: they win. Otherwise the run file `apiary start` wrote finds the node and its broker.
  if (options.port === undefined && options.host === undefined) {
    const running = findRunningNode({
      dataDir: config.node.dataDir,
      dataDirExplicit: options.dataDir !== undefined || options.config !== undefined,
      ...(options.node !== undefined ? { nodeId: options.node } : {}),
    });
    if (running) {
      if (path.resolve(running.dataDir) !== path.resolve(config.node.dataDir) && options.node === undefined) {
        process.stderr.write(`(asking node ${running.nodeId} of ${running.dataDir}, the only node running here)\n`);
      }
      return requestNode({ url: running.url, topicPrefix: running.topicPrefix, command, ...(args ? { args } : {}), ...(auth ? { auth } : {}), nodeId: running.nodeId, timeoutMs });
    }
  }
  const url = config.bus.url ?? `mqtt://${config.broker.host === '0.0.0.0' ? '127.0.0.1' : config.broker.host}:${config.broker.port}`;
  let nodeId = options.node;
  if (nodeId === undefined) {
    const { readIdentity } = await import('../identity/identity.js');
    nodeId = (await readIdentity(config.node.dataDir))?.nodeId;
  }
  return requestNode({ url, topicPrefix: config.bus.topicPrefix, command, ...(args ? { args } : {}), ...(auth ? { auth } : {}), ...(nodeId ? { nodeId } : {}), timeoutMs });
}

export function withNodeOptions(command: Command): Command {
  return withCommonOptions(command)
    .option('--node <nodeId>', 'the node to ask (default: the node of this data dir, else the only node running on this machine)')
    .addOption(new Option('--timeout <ms>', 'how long to wait for an answer').argParser(integer('timeout', 100, 600_000)));
}
