/**
 * Does onnxruntime-node work on this machine? On some ARM boards its prebuilt
 * addon uses instructions the CPU lacks and the whole process dies with
 * SIGILL, which no try/catch can stop. So it is tried in a child process
 * (probe-child.ts) that runs a self-test model, and the parent reads how that
 * child ended: a report, an exit code, a signal, or silence (timeout).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { packagePath } from '../../runtime/package-root.js';
import { NODE_BACKEND_NAME } from './onnxruntime-node-backend.js';
import { errorText } from './ort-session.js';

/** The built child script; the probe always runs compiled code, from tests too. */
export const PROBE_CHILD_SCRIPT = packagePath('dist', 'models', 'inference', 'probe-child.js');
/** Node start-up plus loading the addon takes a few seconds on a Pi Zero 2 W; this leaves ample room. */
export const DEFAULT_PROBE_TIMEOUT_MS = 30_000;
const MAX_STDOUT = 1 << 20;
const STDERR_TAIL = 4000;

const modelResultSchema = z.object({
  dir: z.string(),
  name: z.string(),
  ok: z.boolean(),
  outputs: z.array(z.number()).optional(),
  loadMs: z.number().optional(),
  runMs: z.number().optional(),
  error: z.string().optional(),
});
const childReportSchema = z.object({
  ok: z.boolean(),
  runtime: z.string(),
  error: z.string().optional(),
  selfTest: z.object({ ok: z.boolean(), loadMs: z.number(), runMs: z.number(), maxError: z.number().nullable() }).optional(),
  models: z.array(modelResultSchema),
});

export type ProbeModelResult = z.infer<typeof modelResultSchema>;
/** The JSON line probe-child.ts prints. */
export type ProbeChildReport = z.infer<typeof childReportSchema>;

export const probeVerdictSchema = z.object({
  ok: z.boolean(),
  /** One sentence for logs and `apiary doctor`. */
  reason: z.string(),
  /** ms from spawn to exit. */
  ms: z.number(),
  /** "onnxruntime-node 1.30.0", when the child got as far as importing it. */
  runtime: z.string().optional(),
  signal: z.string().optional(),
  exitCode: z.number().optional(),
  /** A verdict that says something about this platform (not a timeout or a missing script) may be cached. */
  cacheable: z.boolean(),
  models: z.array(modelResultSchema),
});
export type ProbeVerdict = z.infer<typeof probeVerdictSchema>;

export interface ProbeOptions {
  /** Arguments after process.execPath; default: the built probe-child.js. Tests pass a child that fails. */
  readonly argv?: readonly string[];
  /** Model folders to run after the self-test (each on a zero input); `apiary doctor` passes the shipped ones. */
  readonly modelDirs?: readonly string[];
  readonly timeoutMs?: number;
}

/** Signals by which the runtime itself crashes: a verdict about this platform, cached. */
const CRASH_SIGNALS: Readonly<Record<string, string>> = {
  SIGILL: 'illegal instruction: the prebuilt onnxruntime-node uses CPU instructions this processor lacks',
  SIGSEGV: 'segmentation fault',
  SIGBUS: 'bus error',
  SIGABRT: 'aborted',
  SIGFPE: 'floating-point exception',
};
/** Signals from outside (the OOM killer, Ctrl-C, a service stop): the next start probes again. */
const OUTSIDE_SIGNALS: Readonly<Record<string, string>> = {
  SIGKILL: 'killed, by the out-of-memory killer or another process',
  SIGTERM: 'terminated',
  SIGINT: 'interrupted',
};

function lastStage(stderr: string): string | undefined {
  const stages = [...stderr.matchAll(/^probe-stage: (.+)$/gm)];
  return stages.at(-1)?.[1];
}

function parseReport(stdout: string): ProbeChildReport | undefined {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const parsed = childReportSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Runs the probe child once and turns how it ended into a verdict; never throws. */
export function probeNativeBackend(options: ProbeOptions = {}): Promise<ProbeVerdict> {
  const argv = options.argv ?? [PROBE_CHILD_SCRIPT];
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const transient = (reason: string): ProbeVerdict => ({ ok: false, reason, ms: elapsed(), cacheable: false, models: [] });
  if (options.argv === undefined && !existsSync(PROBE_CHILD_SCRIPT)) {
    return Promise.resolve(transient(`the probe script ${PROBE_CHILD_SCRIPT} is missing: run \`npm run build\``));
  }
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(process.execPath, [...argv, ...(options.modelDirs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => { if (stdout.length < MAX_STDOUT) stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL); });
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(transient(`could not start the probe process: ${errorText(err)}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ms = elapsed();
      const stage = lastStage(stderr);
      const during = stage ? ` during "${stage}"` : '';
      const report = parseReport(stdout);
      const models = report?.models ?? [];
      const runtime = report?.runtime;
      if (timedOut) {
        resolve(transient(`the probe process gave no answer within ${timeoutMs} ms${during} and was killed`));
      } else if (signal) {
        const meaning = CRASH_SIGNALS[signal] ?? OUTSIDE_SIGNALS[signal] ?? 'signal';
        resolve({ ok: false, reason: `the probe process was killed by ${signal} (${meaning})${during}`, ms, signal, cacheable: signal in CRASH_SIGNALS, models });
      } else if (!report) {
        const tail = stderr.replace(/^probe-stage: .*\n?/gm, '').trim().slice(-300);
        resolve({ ...transient(`the probe process exited with code ${String(code)} without a valid report${during}${tail ? `: ${tail}` : ''}`), ms, ...(code === null ? {} : { exitCode: code }) });
      } else if (!report.ok || code !== 0) {
        const why = report.error ?? `exit code ${String(code)}`;
        resolve({ ok: false, reason: `${runtime ?? NODE_BACKEND_NAME} failed${during}: ${why}`, ms, runtime, ...(code === null ? {} : { exitCode: code }), cacheable: true, models });
      } else {
        const maxError = report.selfTest?.maxError;
        resolve({ ok: true, reason: `${report.runtime} ran the self-test model correctly (max error ${maxError?.toExponential(1) ?? '?'}) in a child process`, ms, runtime, exitCode: 0, cacheable: true, models });
      }
    });
  });
}
