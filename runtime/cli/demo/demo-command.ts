/**
 * The `apiary demo` command: starts the demo mesh, prints how to play with
 * it, reads commands from standard input, and prints the convergence table.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describeError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { DEMO_HELP, MeshDemo } from './mesh-demo.js';

export async function demoCommand(options: { nodes: number; speed: number; dataDir?: string; duration?: number; every: number }): Promise<void> {
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : await mkdtemp(path.join(os.tmpdir(), 'apiary-demo-'));
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const demo = new MeshDemo({ nodes: options.nodes, dataDir, speed: options.speed, logger: createLogger('warn') });
  out(`starting ${options.nodes} simulated beehive nodes (${options.speed}x speed) in ${dataDir} ...`);
  let stopping: Promise<void> | undefined;
  let ticker: NodeJS.Timeout | undefined = undefined;
  let input: readline.Interface | undefined = undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      clearInterval(ticker);
      input?.close();
      await demo.stop().catch((err: unknown) => process.stderr.write(`apiary demo: ${describeError(err)}\n`));
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
      out('demo stopped');
      process.exit(code);
    })();
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  try {
    await demo.start();
  } catch (err) {
    await demo.stop().catch(() => undefined);
    throw err;
  }
  out(`\n${demo.nodes.map((n, i) => `  hive-${i + 1}  ${n.nodeId}  ${n.node.brokerUrl ?? ''}`).join('\n')}\n`);
  out('every node links to every other through a link you can cut; each row is what one node holds of every origin.');
  out(`${DEMO_HELP}\n`);
  out(demo.table());
  ticker = setInterval(() => out(`\n${demo.table()}`), options.every * 1000);
  if (options.duration) setTimeout(() => stop(0), options.duration * 1000).unref();

  input = readline.createInterface({ input: process.stdin, terminal: false });
  input.on('line', (line) => {
    const [command, ...args] = line.trim().split(/\s+/);
    try {
      switch (command) {
        case '':
        case undefined:
          return;
        case 'cut':
        case 'heal':
          if (command === 'heal' && args.length === 0) demo.healAll();
          else demo.setLink(nodeNumber(args[0]), nodeNumber(args[1]), command === 'heal');
          out(command === 'heal' ? `healed ${args.length === 0 ? 'every link' : `hive-${args[0]} <-> hive-${args[1]}`}` : `cut hive-${args[0]} <-> hive-${args[1]}`);
          break;
        case 'split': {
          const groups = args.map((g) => g.split(',').map(nodeNumber));
          demo.split(groups);
          out(`split into ${groups.map((g) => `{${g.map((n) => `hive-${n}`).join(', ')}}`).join(' and ')}`);
          break;
        }
        case 'swarm': {
          const n = nodeNumber(args[0]);
          void demo.nodes[n - 1]?.node.commands.run('sim/swarm', {});
          out(`hive-${n}: swarm injected; its swarming decision will spread to every node`);
          break;
        }
        case 'show':
          out(demo.table());
          break;
        case 'quit':
        case 'q':
        case 'exit':
          stop(0);
          break;
        default:
          out(`unknown command "${command}"\n${DEMO_HELP}`);
      }
    } catch (err) {
      out(`error: ${describeError(err)}`);
    }
  });
  // Without a terminal or pipe (stdin closed at once), the demo runs until --duration or Ctrl-C.
  await new Promise<void>(() => undefined);
}

function nodeNumber(text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`"${text ?? ''}" is not a node number (1, 2, ...)`);
  return n;
}
