/**
 * The lines a user types into `apiary demo`, checked before anything happens:
 * a mistyped line says what was wrong and what to type, and never half-runs.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';

export type DemoInput =
  | { command: 'cut' | 'heal'; a: number; b: number }
  | { command: 'heal-all' }
  | { command: 'split'; groups: number[][] }
  | { command: 'swarm'; node: number }
  | { command: 'show' | 'quit' | 'nothing' };

export const DEMO_HELP = `commands (type and press Enter):
  cut A B          cut the link between hive-A and hive-B      (e.g. cut 1 2)
  heal A B         heal it                                     (e.g. heal 1 2)
  heal             heal every link
  split 1,2 3,4,5  split the mesh into groups (links between groups cut)
  swarm A          make hive-A's colony swarm (its decision spreads to all)
  show             print the table now
  quit             stop every node and exit (or Ctrl-C)`;

const got = (args: string[]) => (args.length === 0 ? 'none' : `"${args.join(' ')}"`);

function usage(message: string, hint: string): ApiaryError {
  return new ApiaryError(ErrorCodes.USAGE_INVALID, message, { hint });
}

/** Parses one typed line for a demo of `count` nodes (hive-1 .. hive-<count>). */
export function parseDemoInput(line: string, count: number): DemoInput {
  const [command = '', ...args] = line.trim().split(/\s+/).filter((w) => w !== '');
  const range = `this demo has hive-1 to hive-${count}`;
  const node = (text: string, example: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text)) throw usage(`"${text}" is not a node number`, `type a number from 1 to ${count}, e.g. ${example}`);
    if (n < 1 || n > count) throw usage(`there is no hive-${n}: ${range}`, `type a number from 1 to ${count}, e.g. ${example}`);
    return n;
  };
  const pair = (name: 'cut' | 'heal'): DemoInput => {
    const example = `${name} 1 2`;
    const all = name === 'heal' ? ', or heal alone to heal every link' : '';
    if (args.length !== 2) {
      throw usage(`${name} needs two node numbers (the two ends of a link), got ${got(args)}`, `type ${example}${all}`);
    }
    const [a, b] = [node(args[0] as string, example), node(args[1] as string, example)];
    if (a === b) throw usage(`hive-${a} has no link to itself`, `name two different nodes, e.g. ${name} ${a} ${a === 1 ? 2 : 1}`);
    return { command: name, a, b };
  };
  const noArgs = (input: DemoInput): DemoInput => {
    if (args.length > 0) throw usage(`${command} takes no arguments, got: ${args.join(' ')}`, `type ${command}`);
    return input;
  };
  switch (command.toLowerCase()) {
    case '':
      return { command: 'nothing' };
    case 'cut':
      return pair('cut');
    case 'heal':
      return args.length === 0 ? { command: 'heal-all' } : pair('heal');
    case 'split': {
      const example = count >= 3 ? 'split 1 2,3' : 'split 1 2';
      if (args.length < 2) throw usage(`split needs two or more groups, got ${args.length === 0 ? 'none' : `only one: "${args.join(' ')}"`}`, `type ${example} (groups apart by spaces, the nodes of a group joined by commas)`);
      const groups = args.map((g) => g.split(',').filter((n) => n !== '').map((n) => node(n, example)));
      const seen = new Set<number>();
      for (const n of groups.flat()) {
        if (seen.has(n)) throw usage(`hive-${n} is in two groups`, `put each node in one group only, e.g. ${example}`);
        seen.add(n);
      }
      return { command: 'split', groups };
    }
    case 'swarm':
      if (args.length !== 1) throw usage(`swarm needs one node number, got ${got(args)}`, `type swarm 1 (${range})`);
      return { command: 'swarm', node: node(args[0] as string, 'swarm 1') };
    case 'show':
      return noArgs({ command: 'show' });
    case 'quit':
    case 'q':
    case 'exit':
      return noArgs({ command: 'quit' });
    default:
      throw usage(`unknown command "${command}"`, `type one of the commands below\n${DEMO_HELP}`);
  }
}
