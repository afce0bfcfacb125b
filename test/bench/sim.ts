/**
 * The mesh simulation in the bench (issue 16: "a discrete-event simulation
 * that runs the real protocol code ... for 100 and 500 nodes"): each size in
 * a child process (test/sim/run.ts), so its heap is its own, its JSON read
 * back for the report.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ScenarioResult } from '../sim/scenario.js';

export interface SimPlan {
  readonly sizes: readonly number[];
  /** The partition, instead of the scenario's own (60 s; 30 s from 300 nodes). */
  readonly partitionMs?: number;
  /** Message loss per hop, instead of 0.1%. */
  readonly loss?: number;
}
export const SIM_FULL: SimPlan = { sizes: [100, 500] };
export const SIM_QUICK: SimPlan = { sizes: [50] };

const RUN = fileURLToPath(new URL('../sim/run.js', import.meta.url));

export async function measureSim(plan: SimPlan, progress: (line: string) => void): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const nodes of plan.sizes) {
    progress(`sim: ${nodes} simulated nodes (a few minutes at 500)`);
    const args = [`--nodes=${nodes}`, ...(plan.partitionMs !== undefined ? [`--partition-ms=${plan.partitionMs}`] : []), ...(plan.loss !== undefined ? [`--loss=${plan.loss}`] : [])];
    const child = spawn(process.execPath, ['--max-old-space-size=4096', '--expose-gc', RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) progress(line.trim()); });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`the simulation of ${nodes} nodes exited with ${code}`);
    results.push(...(JSON.parse(out) as ScenarioResult[]));
  }
  return results;
}
