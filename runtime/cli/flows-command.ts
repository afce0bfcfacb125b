/**
 * `apiary flows passwd`: the Node-RED editor's login. The bcrypt hash (with
 * the bcryptjs Node-RED itself ships, so Apiary needs no crypto dependency)
 * goes to <dataDir>/node-red-admin.json, where the settings generator reads
 * it each time Node-RED starts.
 */
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { findNodeRed, writeAdmin } from '../extensions/flows/node-red-files.js';

interface Bcrypt { hashSync(password: string, rounds: number): string }

const MIN_LENGTH = 8;

/** The password: the first line of stdin when it is not a terminal (scripts, tests), else asked twice without echo. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) text += String(chunk);
    return text.split(/\r?\n/)[0] ?? '';
  }
  const ask = async (prompt: string): Promise<string> => {
    process.stderr.write(prompt);
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
    try {
      return await new Promise<string>((resolve) => rl.once('line', resolve));
    } finally {
      rl.close();
      process.stderr.write('\n');
    }
  };
  const first = await ask('Node-RED editor password: ');
  if (first !== await ask('again: ')) throw new ApiaryError(ErrorCodes.USAGE_INVALID, 'the two passwords differ', { hint: 'run `apiary flows passwd` again' });
  return first;
}

export async function flowsPasswdCommand(config: ApiaryConfig, options: { user: string }): Promise<void> {
  if (!/^[\w.@-]{1,64}$/.test(options.user)) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--user "${options.user}" is not a user name`, { hint: 'use 1-64 letters, digits, _, ., @ or -' });
  }
  const redJs = findNodeRed(config.flows);
  const password = await readPassword();
  if (password.length < MIN_LENGTH) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `the password is shorter than ${MIN_LENGTH} characters`, { hint: 'anyone who logs in to the editor can run code on this board: choose a longer one' });
  }
  const bcrypt = createRequire(redJs)('bcryptjs') as Bcrypt;
  const file = await writeAdmin(config.node.dataDir, { username: options.user, password: bcrypt.hashSync(password, 10) });
  process.stdout.write(`saved the Node-RED editor login of "${options.user}" in ${file}\nit takes effect when Node-RED next starts: \`apiary flows stop\`, then \`apiary flows start\` (or restart the node)\n`);
}
