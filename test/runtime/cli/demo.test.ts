/**
 * `apiary demo` as a user runs it: the CLI in a child process, commands typed
 * on standard input. The nodes converge, split, and converge again after heal;
 * what it prints reads right to a newcomer (issue 11).
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
      // The legend says what a cell means, and that a gap is a count of missing entries, not a range.
      expect(output).toContain('204 (-37) = it holds 204 and lacks the 37 newest');
      expect(output).toContain('204       = the node holds 204 entries of that feed');
      // Every command's mistakes say what was wrong and what to type; none half-runs.
      child.stdin.write('swarm 7\nheal 1\ncut 1 1\nsplit 1,2\nsplit 1,2 2,3\nswarm\nfly 2\n');
      mark = await waitForText(/unknown command "fly"/, mark);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: there is no hive-7: this demo has hive-1 to hive-3\n {2}fix: type a number from 1 to 3, e\.g\. swarm 1/);
      expect(output).not.toMatch(/hive-7: swarm injected/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: heal needs two node numbers \(the two ends of a link\), got "1"\n {2}fix: type heal 1 2, or heal alone to heal every link/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: hive-1 has no link to itself\n {2}fix: name two different nodes, e\.g\. cut 1 2/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: split needs two or more groups, got only one: "1,2"\n {2}fix: type split 1 2,3/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: hive-2 is in two groups/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: swarm needs one node number, got none\n {2}fix: type swarm 1 \(this demo has hive-1 to hive-3\)/);
      expect(output).toMatch(/error: APIARY_USAGE_INVALID: unknown command "fly"\n {2}fix: type one of the commands below\ncommands/);
      child.stdin.write('swarm 1\nsplit 1 2,3\n');
      mark = await waitForText(/split into \{hive-1\} and \{hive-2, hive-3\}/, mark);
      // hive-1 is cut off from both others: its row shows it lacking their new entries, as a count, and the line says what is missing.
      mark = await waitForText(/hive-1 +·○○ +\d+ +\d+ \(-\d+\) +\d+ \(-\d+\)\n.*\n.*\nnot converged: hive-1 lacks \d+ entries of hive-2 and \d+ of hive-3; hive-2 lacks \d+ entries of hive-1/, mark);
      child.stdin.write('heal\n');
      mark = await waitForText(/healed every link/, mark);
      await waitForText(/hive-1 +·●● [^\n]*\n[^\n]*\n[^\n]*\nconverged: every node holds every entry/, mark, 40_000);
      // The swarm's decision: one readable line with the time and the hive's name, no raw JSON log line.
      await waitForText(/\n\d\d:\d\d:\d\d {2}hive-1 {2}decision {2}warning {3}raised: The colony sounds like it is preparing to swarm, because model\.hive-sound\.pre-swarm = /, 0, 60_000);
      expect(output).not.toMatch(/"level":/);
      child.stdin.write('quit\n');
      expect(await exited).toBe(0);
      expect(output).toMatch(/demo stopped/);
      // "converged" only under a table where every node holds the same of every origin, with no gap shown.
      const tables = [...output.matchAll(/\nnode +links +hive-1 +hive-2 +hive-3\n((?:hive-\d .*\n){3})(.*)/g)];
      const converged = tables.filter((t) => (t[2] ?? '').startsWith('converged'));
      expect(converged.length).toBeGreaterThan(1);
      for (const [, rows = ''] of converged) {
        const cells = rows.trim().split('\n').map((row) => row.trim().split(/ {2,}/).slice(2));
        expect(cells.map((row) => row.join(' '))).toEqual([0, 1, 2].map(() => (cells[0] ?? []).join(' ')));
        expect(rows).not.toMatch(/\(-|\d-\d/);
      }
      for (const [, rows = '', status = ''] of tables.filter((t) => !(t[2] ?? '').startsWith('converged'))) {
        expect(rows).toMatch(/\(-\d+\)/);
        expect(status).toMatch(/^not converged: hive-\d lacks \d+ entries of hive-\d/);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
