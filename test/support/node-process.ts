/**
 * Runs `apiary start` as a real child process (the compiled CLI) and finds
 * the port it printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BUILT_CLI } from './global-setup.js';

export interface SpawnedNode {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the output matches `pattern` (rejects if the process exits first or after `timeoutMs`). */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
}

export interface NodeProcess extends SpawnedNode {
  port: number;
}

/** `apiary start <args>` as a child process, not waiting for anything; `env` is added to this process's environment. */
export function spawnNodeProcess(args: string[], env: NodeJS.ProcessEnv = {}): SpawnedNode {
  const child = spawn(process.execPath, [BUILT_CLI, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })));
  const waitFor = (pattern: RegExp, timeoutMs = 20_000) => new Promise<RegExpExecArray>((resolve, reject) => {
    const done = () => { clearTimeout(timer); listeners.delete(check); };
    const timer = setTimeout(() => { done(); reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    const check = () => {
      const match = pattern.exec(output);
      if (match) { done(); resolve(match); }
    };
    listeners.add(check);
    check();
    void exited.then(({ code }) => { if (listeners.has(check)) { done(); reject(new Error(`the node exited with ${code} before ${String(pattern)}:\n${output}`)); } });
  });
  return { child, output: () => output, exited, waitFor };
}

export async function startNodeProcess(args: string[], timeoutMs = 20_000, env: NodeJS.ProcessEnv = {}): Promise<NodeProcess> {
  const spawned = spawnNodeProcess(args, env);
  const match = await spawned.waitFor(/broker port (\d+)/, timeoutMs);
  return { ...spawned, port: Number(match[1]) };
}
