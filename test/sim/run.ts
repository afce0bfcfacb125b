/**
 * `node --expose-gc dist/test/sim/run.js [--nodes=100,500] [--loss=0.001] [--graft-timeout=<ms>] [--partition-ms=<ms>]`: the mesh simulation's
 * scenarios, one line of progress per phase and a JSON summary at the end.
 */
import { runScenario, type ScenarioPlan } from './scenario.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const sizes = (arg('nodes') ?? '100').split(',').map(Number);
const loss = Number(arg('loss') ?? 0.001);
const graft = arg('graft-timeout');
const partition = arg('partition-ms');
const results = [];
for (const nodes of sizes) {
  const plan: ScenarioPlan = {
    nodes, degree: 4, rate: nodes >= 300 ? 0.1 : 0.5, warmupMs: nodes >= 300 ? 40_000 : 10_000, steadyMs: 20_000, partitionMs: partition !== undefined ? Number(partition) : nodes >= 300 ? 30_000 : 60_000, convergeTimeoutMs: 300_000,
    network: { latencyMs: 20, jitterMs: 30, loss }, churn: 0.05, settings: graft === undefined ? {} : { graftTimeoutMs: Number(graft) },
  };
  const result = await runScenario(plan, (line) => process.stderr.write(`${line}\n`));
  results.push(result);
  process.stderr.write(`sim ${nodes} nodes: ${result.events} events in ${(result.wallMs / 1000).toFixed(1)} s wall, heap ${(result.heapPerNodeBytes / 1024).toFixed(0)} KiB per node\n`);
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
