/**
 * `apiary demo` as a user runs it: the CLI in a child process, commands typed
 * on standard input. The nodes converge, split, and converge again after heal.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BUILT_CLI } from '../../support/global-setup.js';

describe('apiary demo', () => {
  it('starts a mesh, splits it on command, and converges again after heal', async () => {
    const child = spawn(process.execPath, [BUILT_CLI, 'demo', '--nodes', '3', '--speed', '30', '--every', '1', '--duration', '60'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const waitForText = async (pattern: RegExp, from: number, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output.slice(from))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${String(pattern)} in:\n${output.slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return output.length;
    };
    try {
      let mark = await waitForText(/converged: every node holds every entry/, 0);
      expect(output).toMatch(/cut A B/); // it tells the user how to play with it
      child.stdin.write('split 1 2,3\n');
      mark = await waitForText(/split into \{hive-1\} and \{hive-2, hive-3\}/, mark);
      // hive-1 is cut off from both others: its row shows it lacking their new entries.
      mark = await waitForText(/hive-1 +·○○ .*catching up/s, mark);
      child.stdin.write('heal\n');
      mark = await waitForText(/healed every link/, mark);
      await waitForText(/hive-1 +·●● [^\n]*\n[^\n]*\n[^\n]*\nconverged: every node holds every entry/, mark, 40_000);
      child.stdin.write('quit\n');
      expect(await exited).toBe(0);
      expect(output).toMatch(/demo stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
