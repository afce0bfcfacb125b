/**
 * One size of the mesh catch-up benchmark in its own process (see
 * catchup.ts): `node catchup-child.js <nodes> <plan JSON> <tmp dir> <result file>`.
 * Progress goes to stderr; the result is written as JSON to the result file.
 * SIGTERM, SIGINT or the parent going away (stdin closes) stops every node
 * and proxy and removes the data dir.
 */
import { writeFile } from 'node:fs/promises';
import { runSize, type CatchupPlan } from './catchup.js';
import { Resources } from './processes.js';

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function main(): Promise<void> {
  const [nodes, plan, tmp, out] = process.argv.slice(2);
  const n = Number(nodes);
  if (!Number.isInteger(n) || n < 2 || !plan || !tmp || !out) throw new Error('usage: catchup-child.js <nodes> <plan JSON> <tmp dir> <result file>');
  const res = new Resources();
  let stopping: Promise<void> | undefined;
  const interrupted = () => {
    stopping ??= res.closeAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // The parent holds our stdin open; when it goes (the parent died), stop too.
  process.stdin.once('close', interrupted).resume();
  try {
    const run = await runSize(res, tmp, n, JSON.parse(plan) as CatchupPlan, progress);
    await writeFile(out, `${JSON.stringify(run)}\n`);
  } finally {
    await res.closeAll();
  }
}

main().then(
  // Timers a stopped node may leave (unref'd or not) must not keep the run waiting.
  () => process.exit(0),
  (err: unknown) => {
    progress(`catch-up child failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exit(1);
  },
);
