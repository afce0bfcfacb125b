/**
 * Child-process entry of the native backend probe (backend-probe.ts): loads
 * onnxruntime-node, runs the self-test model and checks its answer, then runs
 * each model folder named on the command line (`apiary doctor`), and prints
 * one JSON line on stdout. If the addon uses an instruction this CPU lacks,
 * this process dies by SIGILL, and only it.
 *
 * Stages go to stderr as they start (pipes are synchronous on Linux), so the
 * parent can say where a crash happened.
 */
import type { ProbeChildReport, ProbeModelResult } from './backend-probe.js';
import { NODE_BACKEND_NAME, OnnxRuntimeNodeBackend } from './onnxruntime-node-backend.js';
import { errorText } from './ort-session.js';
import { runModelDir, runSelfTest } from './self-test.js';

const stage = (name: string) => process.stderr.write(`probe-stage: ${name}\n`);

async function main(): Promise<ProbeChildReport> {
  stage('import');
  const ort = await import('onnxruntime-node');
  const runtime = `${NODE_BACKEND_NAME} ${ort.env.versions.common ?? '?'}`;
  const backend = new OnnxRuntimeNodeBackend();
  const { error, ...selfTest } = await runSelfTest(backend, stage);
  const models: ProbeModelResult[] = [];
  for (const dir of process.argv.slice(2)) models.push(await runModelDir(backend, dir, stage));
  return { ok: selfTest.ok, runtime, selfTest, models, ...(error === undefined ? {} : { error }) };
}

const report = await main().catch((err: unknown): ProbeChildReport => ({ ok: false, runtime: NODE_BACKEND_NAME, error: errorText(err), models: [] }));
stage('done');
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.ok ? 0 : 1;
