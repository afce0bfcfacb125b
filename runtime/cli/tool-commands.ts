/**
 * Every `apiary` command but `start`, `init` and `id` (cli.ts): the node
 * commands, one per command of the registry (registry-cli.ts), and the tools.
 * Apart so that `apiary start` does not build them: turning each registry
 * command's schema into JSON Schema and options cost about a twentieth of the
 * node's cold start (issue 16).
 */
import { type Command, Option } from 'commander';
import { allNodeCommands } from '../apps/applications.js';
import { DEFAULT_CONFIG_FILE } from '../config/load-config.js';
import { NODE_COMMAND_GROUPS, NODE_COMMAND_VIEWS } from './node-command-views.js';
import { askNode, integer, load, positive, withCommonOptions, withNodeOptions, type CommonOptions } from './node-options.js';
import { addRegistryCommands } from './registry-cli.js';

interface DemoCommandOptions { nodes: number; speed: number; dataDir?: string; duration?: number; every: number }

/** Adds the commands to `program`, after `start`, `init` and `id`; `version` is the package's, for `apiary mcp`. */
export function addToolCommands(program: Command, version: string): void {
  addNodeCommands(program, version);
  addTools(program);
}

/** A group the registry's commands made (`models`, `mesh`), for the CLI's own sub-commands beside them. */
function groupCommand(program: Command, name: string): Command {
  const group = program.commands.find((c) => c.name() === name);
  if (!group) throw new Error(`no "${name}" command group: the command registry no longer declares a ${name}/ command`);
  return group;
}

/** The commands that ask a running node: the registry's, `ask` with its voice options, `mcp` and `commands`. */
function addNodeCommands(program: Command, version: string): void {
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
      await mcpCommand(options, version);
    });

  withCommonOptions(program.command('commands'))
    .description("list the commands a node answers over MQTT, with their arguments (from the node's command registry; no node needs to run)")
    .option('--json', 'print JSON: name, description, write, and the arguments as JSON Schema')
    .action(async (options: CommonOptions & { json?: boolean }) => {
      const { commandsCommand } = await import('./commands-command.js');
      commandsCommand({ ...options, topicPrefix: load(options).config.bus.topicPrefix });
    });
}

/** The CLI's own commands: the owner key, releases, models, flows, feeds, doctor, config and the demo. */
function addTools(program: Command): void {
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
  const update = groupCommand(program, 'update');
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
  const models = groupCommand(program, 'models');
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
  const flows = groupCommand(program, 'flows');
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
}
