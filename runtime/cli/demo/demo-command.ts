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
import { watchDecisions } from './demo-decisions.js';
import { DEMO_HELP, parseDemoInput } from './demo-input.js';
import { MeshDemo } from './mesh-demo.js';

/** A decision's log line: the demo prints it readably (demo-decisions.ts), so the node's JSON one is dropped. */
function isDecisionLog(args: unknown[]): boolean {
  const fields = args[0];
  return typeof fields === 'object' && fields !== null && 'rule' in fields && 'reason' in fields;
}

export async function demoCommand(options: { nodes: number; speed: number; dataDir?: string; duration?: number; every: number }): Promise<void> {
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : await mkdtemp(path.join(os.tmpdir(), 'apiary-demo-'));
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const demo = new MeshDemo({ nodes: options.nodes, dataDir, speed: options.speed, logger: createLogger('warn', { skip: isDecisionLog }) });
  out(`starting ${options.nodes} simulated beehive nodes (${options.speed}x speed) in ${dataDir} ...`);
  let stopping: Promise<void> | undefined;
  let ticker: NodeJS.Timeout | undefined = undefined;
  let input: readline.Interface | undefined = undefined;
  let unwatch: (() => Promise<void>) | undefined = undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      clearInterval(ticker);
      input?.close();
      await unwatch?.().catch(() => undefined);
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
  out('every node links to every other through a link you can cut (links: ● up, ○ down).');
  out('the table has a row per node and a column per origin\'s feed:');
  out('  204       = the node holds 204 entries of that feed');
  out('  204 (-37) = it holds 204 and lacks the 37 newest, which another node has');
  out('decisions print as they are made: time, hive, severity, raised or cleared, and why.');
  out(DEMO_HELP);
  unwatch = await watchDecisions(demo.nodes.map((n) => ({ name: n.name, url: n.node.brokerUrl ?? '', topic: n.node.topics.decision('+') })), out);
  const printTable = async () => out(`\n${demo.table(await demo.snapshot())}`);
  await printTable();
  // One table at a time: a slow snapshot never overlaps the next.
  let printing = false;
  ticker = setInterval(() => {
    if (printing) return;
    printing = true;
    void printTable().finally(() => { printing = false; });
  }, options.every * 1000);
  if (options.duration) setTimeout(() => stop(0), options.duration * 1000).unref();

  input = readline.createInterface({ input: process.stdin, terminal: false });
  input.on('line', (line) => {
    try {
      const typed = parseDemoInput(line, demo.nodes.length);
      switch (typed.command) {
        case 'nothing':
          return;
        case 'cut':
        case 'heal':
          demo.setLink(typed.a, typed.b, typed.command === 'heal');
          out(`${typed.command === 'heal' ? 'healed' : 'cut'} hive-${typed.a} <-> hive-${typed.b}`);
          break;
        case 'heal-all':
          demo.healAll();
          out('healed every link');
          break;
        case 'split':
          demo.split(typed.groups);
          out(`split into ${typed.groups.map((g) => `{${g.map((n) => `hive-${n}`).join(', ')}}`).join(' and ')}`);
          break;
        case 'swarm':
          demo.injectSwarm(typed.node);
          out(`hive-${typed.node}: swarm injected; its pre-swarm and swarming decisions follow and spread to every node`);
          break;
        case 'show':
          void printTable();
          break;
        case 'quit':
          stop(0);
          break;
      }
    } catch (err) {
      out(`error: ${describeError(err)}`);
    }
  });
  // Without a terminal or pipe (stdin closed at once), the demo runs until --duration or Ctrl-C.
  await new Promise<void>(() => undefined);
}
