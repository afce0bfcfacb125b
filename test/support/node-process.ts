/**
 * Runs `apiary start` as a real child process (the compiled CLI) and finds
 * the port it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BUILT_CLI } from './global-setup.js';

export interface NodeProcess {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startNodeProcess(args: string[], timeoutMs = 20_000): Promise<NodeProcess> {
  const child = spawn(process.execPath, [BUILT_CLI, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the node did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const check = () => {
      const match = /broker port (\d+)/.exec(output);
      if (match) { clearTimeout(timer); resolve(Number(match[1])); }
    };
    child.stdout.on('data', check);
    void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`the node exited with ${code} before starting:\n${output}`)); });
  });
  return { child, port, output: () => output, exited };
}
