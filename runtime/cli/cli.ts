/**
 * The `apiary` command. Each sub-command loads the same validated config, so
 * `apiary status` finds the node that `apiary start` runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CONFIG_YAML } from '../config/default-config.js';
import { DEFAULT_CONFIG_FILE, migrationNotes } from '../config/load-config.js';
import { ApiaryError, describeError, ErrorCodes } from '../errors.js';
import { loadOrCreateIdentity } from '../identity/identity.js';
import { createLogger } from '../log.js';
import type { ApiaryNode } from '../core/apiary-node.js';
import { allNodeCommands } from '../apps/applications.js';
import { packagePath } from '../package-root.js';
import { EXIT_ROLLBACK } from '../extensions/runtime-updates/launched-release.js';
import { NODE_COMMAND_GROUPS, NODE_COMMAND_VIEWS } from './node-command-views.js';
import { askNode, EXIT_CONFIG, integer, isConfigError, load, withCommonOptions, withNodeOptions, type CommonOptions } from './node-options.js';
import { addRegistryCommands } from './registry-cli.js';
import { removeRunFiles, writeRunFile } from './run-file.js';

const VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

interface DemoCommandOptions { nodes: number; speed: number; dataDir?: string; duration?: number; every: number }

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number above 0, e.g. 60 for one simulated minute per second');
  return n;
};

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

// Every command a node answers, from its command registry: `shared/set` is `apiary shared set`, an extension's new command is here too.
addRegistryCommands(program, allNodeCommands(), {
  send: async (command, args, options) => {
    // Signed only when asked (--owner-key): a key that is not this node's owner's would make it refuse what it would take unsigned.
    if (typeof options.ownerKey !== 'string') return askNode(options, command, args);
    const [{ readOwnerKey }, { signCommand }] = await Promise.all([import('./mcp-command.js'), import('../commands/command-auth.js')]);
    const owner = await readOwnerKey(options.ownerKey);
    return askNode(options, command, args, owner ? (nodeId) => signCommand(owner, nodeId, command, args) : undefined);
  },
  nodeOptions: withNodeOptions,
  presentations: NODE_COMMAND_VIEWS,
  groups: NODE_COMMAND_GROUPS,
});

// `ask` beyond the registry's generic view: also --listen (the node's microphone) and --audio (a recording), --say/--out.
{
  const generic = program.commands.findIndex((c) => c.name() === 'ask');
  // The registry's description first, as for every registry command.
  const registryHelp = generic >= 0 ? program.commands[generic]?.description() : undefined;
  if (generic >= 0) (program.commands as Command[]).splice(generic, 1);
  withNodeOptions(program.command('ask'))
    .description(`${registryHelp ?? 'answer a question in words'}; typed, spoken into the node's voice microphone (--listen), or from a recording (--audio)`)
    .argument('[question]', 'the question, in quotes, like "how is the hive?" or "is it going to swarm?"')
    .option('--listen', "listen for one spoken question on the node's voice microphone (voice.enabled); it answers on its speaker")
    .option('--audio <file.wav>', 'recognise the question in a WAV recording here (pocketsphinx), then ask the node')
    .option('--say', "speak the answer on this machine's speaker (espeak-ng, aplay)")
    .option('--out <file.wav>', 'write the spoken answer to a WAV file')
    .option('--json', 'print the raw JSON answer')
    .action(async (question: string | undefined, options: Record<string, unknown>) => {
      const { askCommand } = await import('./ask-command.js');
      await askCommand(load(options).config, question, options);
    });
}

withNodeOptions(program.command('mcp'))
  .description("serve MCP on stdio for an AI assistant (add `apiary mcp` to its MCP config): eight tools over the node's commands, asked over MQTT; writes only owner-signed")
  .option('--owner-key <file>', 'the owner key file that signs writes (default: ./owner.json if it exists; without one the node refuses writes)')
  .action(async (options: Record<string, unknown>) => {
    const { mcpCommand } = await import('./mcp-command.js');
    await mcpCommand(options, VERSION);
  });

withCommonOptions(program.command('commands'))
  .description("list the commands a node answers over MQTT, with their arguments (from the node's command registry; no node needs to run)")
  .option('--json', 'print JSON: name, description, write, and the arguments as JSON Schema')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    const { commandsCommand } = await import('./commands-command.js');
    commandsCommand({ ...options, topicPrefix: load(options).config.bus.topicPrefix });
  });

/** A group the registry's commands made (`models`, `mesh`), for the CLI's own sub-commands beside them. */
function groupCommand(name: string): Command {
  const group = program.commands.find((c) => c.name() === name);
  if (!group) throw new Error(`no "${name}" command group: the command registry no longer declares a ${name}/ command`);
  return group;
}

const owner = program.command('owner').description("the owner's key: signs your nodes' certificates; other owners trust your nodes by it");
const ownerKeyOption = () => new Option('-k, --key-file <file>', 'the owner key file').default('owner.json');
for (const [name, create, description] of [
  ['init', true, 'make an owner key (keep it backed up, and off the boards if you can), and print its public key'],
  ['show', false, "print the owner public key, for other owners' mesh.trust.owners"],
] as const) {
  owner.command(name)
    .description(description)
    .addOption(ownerKeyOption())
    .option('--json', 'print JSON')
    .action(async (options: { keyFile: string; json?: boolean }) => {
      const { ownerShowCommand } = await import('./owner-command.js');
      await ownerShowCommand({ ...options, create });
    });
}
owner.command('sign')
  .description('sign a certificate for a board (its keys from `apiary id` there); the board then needs no owner key')
  .addOption(ownerKeyOption())
  .option('--from <file>', 'a file holding `apiary id --json --owner <your key>` output of the board (its keys, self-signed)')
  .requiredOption('--name <name>', 'a human name for the node, shown in status and to other owners')
  .addOption(new Option('--valid-days <days>', 'days until the certificate expires').argParser(integer('valid-days', 1, 3650)).default(365))
  .option('-o, --out <file>', 'where to write the certificate (default: <node id>.cert.json)')
  .action(async (options: { keyFile: string; from?: string; name: string; validDays: number; out?: string }) => {
    const { ownerSignCommand } = await import('./owner-command.js');
    await ownerSignCommand(options);
  });

owner.command('revoke')
  .description('sign a revocation of one of your nodes (a lost or stolen board); spread it with `apiary mesh revoke`')
  .addOption(ownerKeyOption())
  .requiredOption('--node-key <key>', "the node's public key (from `apiary id` on it)")
  .option('-o, --out <file>', 'where to write the revocation (default: <node id>.revocation.json)')
  .action(async (options: { keyFile: string; nodeKey: string; out?: string }) => {
    const { ownerRevokeCommand } = await import('./owner-command.js');
    await ownerRevokeCommand(options);
  });
owner.command('mandate').description("the owner's mandate for a node: what it may sell and buy, price bounds, budget, credit limits, peers, expiry")
  .command('sign')
  .description('sign a mandate (JSON: v, node, sell, buy, unit, dailyBudget, creditLimitPerPeer, peerOwners, data, expires) for a node; set tasks.mandate to the file on the board')
  .addOption(ownerKeyOption())
  .requiredOption('--file <file>', 'the mandate, as JSON')
  .option('-o, --out <file>', 'where to write the signed mandate (default: <node id>.mandate.json)')
  .action(async (options: { keyFile: string; file: string; out?: string }) => {
    const { mandateSignCommand } = await import('./mandate-command.js');
    await mandateSignCommand(options);
  });
owner.command('mcp-token')
  .description("sign an access token for a node's MCP endpoint (mcp.http.auth: owner-token); prints it and how to use it")
  .addOption(ownerKeyOption())
  .requiredOption('--node <id>', 'the node whose endpoint the token opens (`apiary id` on it)')
  .option('--scope <scope>', 'read (the read tools) or write (also the tools that change the node, as the owner)', 'read')
  .option('--expires <duration>', 'how long it is valid, like 12h or 30d (at most 366d)', '30d')
  .option('--json', 'print JSON')
  .action(async (options: { keyFile: string; node: string; scope: string; expires: string; json?: boolean }) => {
    const { mcpTokenCommand } = await import('./mcp-token-command.js');
    await mcpTokenCommand(options);
  });
const update = groupCommand('update');
update.command('sign')
  .description('sign a runtime payload from `npm run package` (apiary-runtime_<version>_<arch>.tar.gz) with the owner key, into an apiary_<version>_<arch>.release file')
  .argument('<payload>', 'the payload .tar.gz')
  .addOption(ownerKeyOption())
  .option('-o, --out <file>', 'the release file (default: apiary_<version>_<arch>.release beside the payload)')
  .option('--notes <text>', 'release notes, signed with it')
  .action(async (payload: string, options: { keyFile: string; out?: string; notes?: string }) => {
    const { updateSignCommand } = await import('./update-command.js');
    await updateSignCommand(payload, options);
  });
withCommonOptions(update.command('install'))
  .description('check a signed runtime release (signer, architecture, Node.js, config format, newer), unpack it into the slot not running; it starts on trial at the next start and is rolled back unless healthy within updates.healthWindow')
  .argument('<file>', 'an apiary_<version>_<arch>.release file')
  .option('--force', 'install even if it is not newer than the running release (a downgrade or a reinstall)')
  .option('--json', 'print JSON')
  .action(async (file: string, options: CommonOptions & { force?: boolean; json?: boolean }) => {
    const { updateInstallCommand } = await import('./update-command.js');
    await updateInstallCommand(load(options), file, options);
  });
withCommonOptions(update.command('rollback'))
  .description('go back to the release before the current one, from the next start')
  .action(async (options: CommonOptions) => {
    const { updateRollbackCommand } = await import('./update-command.js');
    await updateRollbackCommand(load(options));
  });
const models = groupCommand('models');
withCommonOptions(models.command('list'))
  .description('list shipped, configured (models.dir) and installed models with version, hash, signer and whether this node would run them')
  .option('--json', 'print JSON')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    const { modelsListCommand } = await import('./models-command.js');
    await modelsListCommand(load(options).config, options);
  });
withCommonOptions(models.command('verify'))
  .description("check a model folder's hash, signature and signer against this node's config; exits 1 with the reason if it would be refused")
  .argument('<dir>', 'the model folder (manifest.json + model file)')
  .option('--json', 'print JSON')
  .action(async (dir: string, options: CommonOptions & { json?: boolean }) => {
    const { modelsVerifyCommand } = await import('./models-command.js');
    await modelsVerifyCommand(load(options).config, dir, options);
  });
models.command('sign')
  .description("sign a model folder's manifest.json with the owner key (after checking the model file's hash)")
  .argument('<dir>', 'the model folder (manifest.json + model file)')
  .addOption(ownerKeyOption())
  .action(async (dir: string, options: { keyFile: string }) => {
    const { modelsSignCommand } = await import('./models-command.js');
    await modelsSignCommand(dir, options);
  });
withCommonOptions(models.command('install'))
  .description('verify a model folder, then copy it into <data dir>/models/<name> (the replaced version is kept as <name>.previous)')
  .argument('<dir>', 'the model folder (manifest.json + model file)')
  .action(async (dir: string, options: CommonOptions) => {
    const { modelsInstallCommand } = await import('./models-command.js');
    await modelsInstallCommand(load(options).config, dir);
  });
const flows = groupCommand('flows');
withCommonOptions(flows.command('passwd'))
  .description("set the Node-RED editor's login (a bcrypt hash in the data dir); the password is read from stdin when it is not a terminal, else asked twice; takes effect when Node-RED next starts")
  .option('--user <name>', 'the user name to log in with', 'admin')
  .action(async (options: CommonOptions & { user: string }) => {
    const { flowsPasswdCommand } = await import('./flows-command.js');
    await flowsPasswdCommand(load(options).config, options);
  });
const feed = program.command('feed').description('the signed feeds this node holds, read from its data dir (read-only; works beside a running node)');
withCommonOptions(feed.command('list'))
  .description('per origin: seq range, entries, bytes, gaps, forks and invalid entries (every signature and chain link checked); exits 1 on any gap, fork or invalid entry')
  .option('--json', 'print JSON')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    const { feedListCommand } = await import('./feed-command.js');
    await feedListCommand(load(options).config, options);
  });
withCommonOptions(feed.command('export'))
  .description('print the entries as JSON lines, signatures included, exactly as stored; verify them with the format in docs/formats.md alone')
  .option('--origin <nodeId>', "only this node's feed")
  .addOption(new Option('--from-seq <n>', 'only entries from this seq on').argParser(integer('from-seq', 1, Number.MAX_SAFE_INTEGER)))
  .action(async (options: CommonOptions & { origin?: string; fromSeq?: number }) => {
    const { feedExportCommand } = await import('./feed-command.js');
    await feedExportCommand(load(options).config, options);
  });

withCommonOptions(program.command('doctor'))
  .description('check which inference backend works here (onnxruntime-node probed in a child process, onnxruntime-web), run the shipped models on each, check their hashes; list the board\'s 1-Wire, I2C, IIO, hwmon, sound, GPIO and serial devices, read each configured sensor once, check disk space, the clock and the service, each with a fix; exits 1 if no inference backend works, 78 if the config is invalid (after the checks that need no config)')
  .option('--json', 'print JSON')
  .option('--root <dir>', 'read /sys, /dev, /proc and /run under <dir> (for tests and chroots; default: device.linux.root, else /)')
  .action(async (options: CommonOptions & { json?: boolean; root?: string }) => {
    const { doctorCommand } = await import('./doctor-command.js');
    await doctorCommand(() => load(options).config, options);
  });

program.command('config').description('the config file: its format version, and carrying an older one forward').command('migrate')
  .description('print the config file carried forward to the current config format (the file is left alone), or with --write rewrite it, keeping the original as <file>.bak')
  .option('-c, --config <file>', `the config file (default: ./${DEFAULT_CONFIG_FILE})`)
  .option('--write', 'replace the file (atomically) with the migrated config; the original is kept as <file>.bak')
  .action(async (options: { config?: string; write?: boolean }) => {
    const { configMigrateCommand } = await import('./config-command.js');
    await configMigrateCommand(options);
  });

program.command('demo')
  .description('run several simulated beehive nodes on this machine as a mesh; cut and heal their links and watch them converge')
  .addOption(new Option('-n, --nodes <count>', 'how many nodes').argParser(integer('nodes', 2, 20)).default(5))
  .addOption(new Option('-s, --speed <factor>', 'simulation time factor').argParser(positive).default(60))
  .option('-d, --data-dir <dir>', 'keep the nodes\' data here (default: a temporary folder, removed at exit)')
  .addOption(new Option('--duration <seconds>', 'stop by itself after this long').argParser(integer('duration', 1, 86_400)))
  .addOption(new Option('--every <seconds>', 'print the table this often').argParser(integer('every', 1, 3600)).default(5))
  .action(async (options: DemoCommandOptions) => {
    const { demoCommand } = await import('./demo/demo-command.js');
    await demoCommand(options);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`apiary: ${describeError(err)}\n`);
  if (process.env.APIARY_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  process.exit(isConfigError(err) ? EXIT_CONFIG : 1);
});
