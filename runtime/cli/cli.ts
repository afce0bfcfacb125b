/**
 * The `apiary` command. Each sub-command loads the same validated config, so
 * `apiary status` finds the node that `apiary start` runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_CONFIG_YAML } from '../config/default-config.js';
import { DEFAULT_CONFIG_FILE, migrationNotes } from '../config/load-config.js';
import { ApiaryError, describeError, ErrorCodes } from '../errors.js';
import { loadOrCreateIdentity } from '../identity/identity.js';
import { createLogger } from '../log.js';
import type { ApiaryNode } from '../core/apiary-node.js';
import { packagePath } from '../package-root.js';
import { EXIT_ROLLBACK } from '../extensions/runtime-updates/launched-release.js';
import { EXIT_CONFIG, isConfigError, load, positive, withCommonOptions, type CommonOptions } from './node-options.js';
import { removeRunFiles, writeRunFile } from './run-file.js';

const VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

async function startCommand(options: CommonOptions): Promise<void> {
  const loaded = load(options, true);
  const { config, file } = loaded;
  const logger = createLogger(config.log.level);
  for (const note of migrationNotes(loaded)) logger.info(note);
  // Handled from here on, also while the node module loads and while it starts: a stop aborts the start cleanly.
  const started: { node?: ApiaryNode } = {};
  let stopping: Promise<void> | undefined;
  // Sync, so it also runs on process.exit: a clean stop (or a failed start) leaves no run file behind.
  const dataDir = path.resolve(config.node.dataDir);
  process.on('exit', () => removeRunFiles(dataDir));
  const shutdown = (signal: string) => {
    removeRunFiles(dataDir);
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    logger.info(`${signal}: shutting down`);
    stopping = (started.node?.stop() ?? Promise.resolve()).then(() => {
      if (!started.node) logger.info('Apiary node stopped');
      // A runtime update that rolls back asks for a restart this way (runtime-updates, launcher.ts): the service starts the release before.
      process.exit(process.exitCode === EXIT_ROLLBACK ? EXIT_ROLLBACK : 0);
    }, (err: unknown) => {
      logger.error({ err: describeError(err) }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // Loaded here, not at the top, so `apiary --help` and `apiary id` stay fast.
  const { createNode } = await import('../apps/index.js');
  if (stopping) return;
  const node = createNode(config, logger);
  started.node = node;
  try {
    await node.start();
  } catch (err) {
    if (stopping) return; // a signal stopped the start; the handler exits once the node is closed
    await node.stop().catch(() => undefined);
    throw err;
  }
  if (stopping) return;
  const url = node.brokerUrl ?? '';
  const { hostname, port } = new URL(url);
  // Lets `apiary status` and the other node commands find this node without repeating its flags.
  await writeRunFile({
    nodeId: node.nodeId, url, port: Number(port), dataDir, pid: process.pid, topicPrefix: config.bus.topicPrefix, startedAt: new Date().toISOString(), version: VERSION,
  }).catch((err: unknown) => logger.warn({ err: describeError(err) }, 'could not write the run file: other apiary commands need this node\'s --data-dir / --port'));
  if (stopping) return;
  logger.info({ config: file ?? 'built-in defaults' }, 'configuration');
  // Started through npm (`npm start`), the command is reachable as `npx apiary`; the flags are the ones that find this node.
  const cli = process.env.npm_lifecycle_event === 'start' ? 'npx apiary' : 'apiary';
  const find = `${options.config ? ` --config ${options.config}` : ''}${options.dataDir ? ` --data-dir ${options.dataDir}` : ''}${options.port !== undefined ? ` --port ${port}` : ''}`;
  process.stdout.write(
    `\nApiary node ${node.nodeId} is running (${config.device.kind}${node.clock.speed !== 1 ? `, ${node.clock.speed}x speed` : ''}).\n` +
      `  MQTT broker:  ${url}   (broker port ${port})\n` +
      `  watch it:     mosquitto_sub -h ${hostname} -p ${port} -t '${config.bus.topicPrefix}/#' -v\n` +
      `  status:       ${cli} status${find}\n` +
      (config.device.kind === 'simulated-beehive' ? `  demo swarm:   ${cli} sim swarm${find}\n` : '') +
      `  stop:         Ctrl-C\n\n`,
  );
}

async function initCommand(options: { config?: string; force?: boolean }): Promise<void> {
  const file = path.resolve(options.config ?? DEFAULT_CONFIG_FILE);
  if (existsSync(file) && !options.force) {
    throw new Error(`${file} already exists; pass --force to overwrite it`);
  }
  await writeFile(file, DEFAULT_CONFIG_YAML, { mode: 0o644 });
  process.stdout.write(`wrote ${file}\nedit it, then run: apiary start${options.config ? ` --config ${options.config}` : ''}\n`);
}

async function idCommand(options: CommonOptions & { json?: boolean; owner?: string }): Promise<void> {
  const { config } = load(options);
  const { identity, created } = await loadOrCreateIdentity(config.node.dataDir);
  const { loadOrCreateBoxKey } = await import('../mesh/mesh-identity.js');
  const box = await loadOrCreateBoxKey(config.node.dataDir);
  if (options.json) {
    // The self-signature lets the owner certify exactly these keys for exactly this owner (certificate v2).
    if (options.owner !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(options.owner)) {
      throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--owner is not a 43-character base64url key: ${JSON.stringify(options.owner)}`, { hint: 'copy it from `apiary owner show` on the owner\'s machine' });
    }
    const owner = options.owner ?? (await localOwnerKey(config.mesh.owner.keyFile ?? path.join(config.node.dataDir, 'owner.json')));
    const { selfSign } = await import('../mesh/certificate.js');
    const self = owner === undefined ? undefined : selfSign(identity, { box: box.publicKey, owner, issuedAt: Date.now() });
    if (!self) process.stderr.write('no owner key known here: pass --owner <owner key> (from `apiary owner show`) so the owner can sign a certificate from this output\n');
    process.stdout.write(`${JSON.stringify({ nodeId: identity.nodeId, publicKey: identity.publicKey, boxKey: box.publicKey, ...(self ? { owner: self.owner, issuedAt: self.issuedAt, self: self.self } : {}) })}\n`);
    return;
  }
  const host = config.broker.host === '0.0.0.0' || config.broker.host === '127.0.0.1' ? '<this board\'s address>' : config.broker.host;
  process.stdout.write(
    `node id:    ${identity.nodeId}\npublic key: ${identity.publicKey} (Ed25519, base64url)\nbox key:    ${box.publicKey} (X25519, for private streams)\n` +
      `${created ? `(new identity created in ${config.node.dataDir})\n` : ''}` +
      `neighbours link to this node with, in their config:\n` +
      `  mesh: { neighbours: [ { url: mqtt://${host}:${config.broker.port}, nodeId: ${identity.nodeId}, publicKey: ${identity.publicKey} } ] }\n`,
  );
}

/** The public key of the owner key file the node would use, if that file exists. */
async function localOwnerKey(file: string): Promise<string | undefined> {
  if (!existsSync(file)) return undefined;
  const { loadOrCreateKeyFile } = await import('../identity/identity.js');
  return (await loadOrCreateKeyFile(file)).identity.publicKey;
}



const program = new Command('apiary')
  .description('Apiary: an open agent runtime for small boards. Senses, infers, decides and shares, offline-first.')
  .version(VERSION, '-V, --version', 'print the version of apiary')
  .showHelpAfterError('(run with --help for usage)');

// commander suggests by edit distance, which turns `stat` into `start`: a command the word begins is the better guess.
program.on('command:*', (operands: string[]) => {
  const typed = operands[0] ?? '';
  const names = program.commands.map((c) => c.name());
  const guess = names.filter((name) => name.startsWith(typed));
  process.stderr.write(`apiary: unknown command '${typed}'${guess.length > 0 ? ` (did you mean ${guess.join(' or ')}?)` : ''}\n  commands: ${names.join(', ')}\n(run with --help for usage)\n`);
  process.exit(1);
});

withCommonOptions(program.command('start'))
  .description('run a node: device, models, decisions, storage and the MQTT broker')
  .addOption(new Option('-s, --speed <factor>', 'simulation time factor, e.g. 60 = one simulated minute per second').argParser(positive))
  .action((options: CommonOptions) => startCommand(options));

program.command('init')
  .description(`write a commented default config (./${DEFAULT_CONFIG_FILE})`)
  .option('-c, --config <file>', 'where to write it')
  .option('-f, --force', 'overwrite an existing file')
  .action((options: { config?: string; force?: boolean }) => initCommand(options));

withCommonOptions(program.command('id'))
  .description("print this node's id and public key (creating the identity if there is none yet)")
  .option('--json', 'print JSON, self-signed for the owner (the input of `apiary owner sign --from`)')
  .option('--owner <key>', 'the owner key to self-sign for (default: the owner key file of this node, if it has one)')
  .action((options: CommonOptions & { json?: boolean; owner?: string }) => idCommand(options));


// `apiary start` runs with none of the other commands built: the node commands alone, one per
// registry command from its JSON Schema, cost about a twentieth of a cold start (issue 16).
// The first word that is not an option is the command (the program's own options take no value).
// (No top-level await: the bundle is CommonJS, see code-cache.ts.)
const commands = process.argv.slice(2).find((arg) => !arg.startsWith('-')) === 'start'
  ? Promise.resolve()
  : import('./tool-commands.js').then(({ addToolCommands }) => { addToolCommands(program, VERSION); });

commands.then(() => program.parseAsync(process.argv)).catch((err: unknown) => {
  process.stderr.write(`apiary: ${describeError(err)}\n`);
  if (process.env.APIARY_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  process.exit(isConfigError(err) ? EXIT_CONFIG : 1);
});
