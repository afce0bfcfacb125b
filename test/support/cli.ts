/** The compiled `apiary` CLI as a user runs it: a child process, with its exit code and output. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BUILT_CLI } from './global-setup.js';

/** `env`: added to this process's environment (e.g. XDG_RUNTIME_DIR, so tests do not see each other's run files). */
export async function apiary(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BUILT_CLI, ...args], { cwd, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
