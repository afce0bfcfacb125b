/**
 * Benchmark for issue #2: start-up time, memory, CPU and disk writes per
 * reading of a simulated beehive node; the embedded MQTT broker against
 * mosquitto; mesh catch-up after a partition; and inference per backend.
 * `npm run bench [-- --quick] [--only startup|steady|storage|broker|catchup|inference|arm64|packaged|flows|voice|mcp|tasks|payments|sim] [--baseline <dir>]`.
 * arm64 (the arm64 .deb under qemu-aarch64, minutes), packaged (this machine's .deb, built and
 * extracted, against the checkout, natively) and flows (the node with and without its supervised
 * Node-RED, issue 13) run only when named in --only.
 * `--baseline <dir>` (or APIARY_BENCH_BASELINE): another built checkout
 * (baseline.ts), whose node, broker and catch-up child run beside ours, in turns.
 * Progress goes to stderr, the table to stdout, the details to
 * dist/bench-results.json. It reports; a missed target never fails the run
 * (exit 1 only when the harness itself cannot measure).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_YAML } from '../../runtime/config/default-config.js';
import { packageRoot } from '../../runtime/package-root.js';
import { baselineNode, resolveBaseline, UsageError, type Baseline, type NodeSide } from './baseline.js';
import { BROKER_FULL, BROKER_QUICK, measureBrokers, type BrokerResults } from './broker.js';
import { brokerRows, renderBroker } from './broker-report.js';
import { CATCHUP_FULL, CATCHUP_QUICK, measureCatchup, type CatchupPlan, type CatchupResults } from './catchup.js';
import { catchupCompareRows, catchupRows, renderCatchupCompare } from './catchup-report.js';
import { measureArm64, type Arm64Results } from './arm64.js';
import { arm64Rows } from './arm64-report.js';
import { measurePackaged, type PackagedResults } from './packaged.js';
import { packagedRows } from './packaged-report.js';
import { FLOWS_FULL, FLOWS_QUICK, measureFlows, type FlowsPlan, type FlowsResults } from './flows.js';
import { flowsRows } from './flows-report.js';
import { measureVoice, VOICE_FULL, VOICE_QUICK, type VoiceResults } from './voice.js';
import { voiceRows } from './voice-report.js';
import { mcpRows, measureMcp, type McpResults } from './mcp.js';
import { measureTasks, TASKS_FULL, TASKS_QUICK, type TasksResults } from './tasks.js';
import { tasksRows } from './tasks-report.js';
import { measurePayments, PAYMENTS_FULL, PAYMENTS_QUICK, type PaymentsResults } from './payments.js';
import { paymentsRows } from './payments-report.js';
import { measureSim, SIM_FULL, SIM_QUICK } from './sim.js';
import { simRows } from './sim-report.js';
import { measureStorage, STORAGE_FULL, STORAGE_QUICK } from './storage.js';
import { storageRows } from './storage-report.js';
import type { ScenarioResult } from '../sim/scenario.js';
import { INFERENCE_FULL, INFERENCE_QUICK, inferenceRows, measureInference, type InferenceResults } from './inference.js';
import { CLK_TCK } from './proc.js';
import { budgetRows } from './budgets.js';
import { SERVICE_UNIT, serviceNodeFlags } from './service-flags.js';
import { renderStartupCompare, renderSteadyCompare, startupCompareRows, steadyCompareRows } from './node-compare.js';
import { NODE_MAIN, Resources } from './processes.js';
import { measureStartup, primeCodeCache, type StartupResults } from './startup.js';
import { ioCounter, measureSteady, measureSteadyTurns, messages, PAGE_BYTES, recorded, span, storedBytes, type Sample, type SteadyPlan, type SteadyResults, type SteadyTurns } from './steady.js';
import { deltas, ratio, summarize } from './stats.js';
import { evaluate, renderTable, type Row } from './table.js';

const RESULTS_FILE = fileURLToPath(new URL('../../bench-results.json', import.meta.url));
const MB = 1024; // KiB per MiB, for /proc's kB figures

interface Plan extends SteadyPlan {
  /** Start-up rounds (with --baseline: per checkout, taking turns). */
  readonly startRuns: number;
  /** With --baseline: steady-state sessions per checkout, taking turns. */
  readonly steadyRepeats: number;
  /** Without --baseline: steady-state sessions, one after the other (APIARY_BENCH_STEADY_REPEATS, else one). */
  readonly steadySolo: number;
}

const FULL: Plan = { startRuns: 5, steadyRepeats: 3, steadySolo: 1, durationMs: 60_000, warmupMs: 5_000, windows: 5 };
const QUICK: Plan = { startRuns: 3, steadyRepeats: 1, steadySolo: 1, durationMs: 10_000, warmupMs: 2_000, windows: 4 };

/**
 * APIARY_BENCH_START_RUNS=10, APIARY_BENCH_STEADY_REPEATS=5: more rounds for steadier medians (e.g. against a baseline on a busy machine);
 * APIARY_BENCH_STEADY_SEALED=1: also a speed 60 node with sealed streams in the steady section.
 */
function withNodeOverrides(plan: Plan): Plan {
  const count = (name: string) => {
    const n = Number(process.env[name]);
    return Number.isInteger(n) && n >= 1 ? n : undefined;
  };
  const startRuns = count('APIARY_BENCH_START_RUNS');
  const steadyRepeats = count('APIARY_BENCH_STEADY_REPEATS');
  const sealed = process.env.APIARY_BENCH_STEADY_SEALED === '1';
  return { ...plan, ...(startRuns ? { startRuns } : {}), ...(steadyRepeats ? { steadyRepeats, steadySolo: steadyRepeats } : {}), ...(sealed ? { sealed } : {}) };
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

function startupRows(s: StartupResults): Row[] {
  const section = 'start-up, shipped default config (speed 1); ms from spawn';
  const noop = summarize(s.noopMs);
  const reference = noop ? { label: 'ms node -e 0', value: noop.median } : undefined;
  const target = { on: 'ratio', max: 5, text: '≤ 5x node -e 0' } as const;
  return [
    { section, metric: 'cold: first reading on MQTT (new data dir)', unit: 'ms', summary: summarize(s.cold.map((r) => r.firstReadingMs)), reference, target },
    { section, metric: 'warm: first reading on MQTT (existing dir)', unit: 'ms', summary: summarize(s.warm.map((r) => r.firstReadingMs)), reference, target },
    { section, metric: 'cold, no code cache yet (first start of an install)', unit: 'ms', summary: summarize(s.noCache.map((r) => r.firstReadingMs)), reference },
    { section, metric: 'cold: "MQTT broker:" line on stdout', unit: 'ms', summary: summarize(s.cold.map((r) => r.brokerLineMs)), reference },
    { section, metric: 'warm: "MQTT broker:" line on stdout', unit: 'ms', summary: summarize(s.warm.map((r) => r.brokerLineMs)), reference },
    { section, metric: 'node -e 0, spawn to exit', unit: 'ms', summary: noop },
  ];
}

function steadyRows(s: SteadyResults, plan: Plan): Row[] {
  const rows: Row[] = [];
  const seconds = (plan.durationMs / 1000).toFixed(0);
  const idleRss = { label: 'MB idle node', value: s.idle.memory.rssKiB / MB };
  const idleLoad = ratio(seriesSpan(s.idle.cpuMs), seriesSpan(s.idle.atMs) / 1000);
  const runs = [...s.nodes, ...(s.sealed ? [s.sealed] : [])];
  const counter = ioCounter(runs);
  const counterName = counter === 'writeBytes' ? 'write_bytes' : 'wchar';
  for (const run of runs) {
    const name = run.label ?? `speed ${run.speed}`;
    const section = `memory at ${seconds} s, ${name}`;
    rows.push(
      { section, metric: `RSS (VmRSS), ${name}`, unit: 'MB', summary: summarize([run.memory.rssKiB / MB]), reference: idleRss, target: { on: 'median', max: 110, text: '≤ 110 MB' } },
      { section, metric: `peak RSS (VmHWM), ${name}`, unit: 'MB', summary: summarize([run.memory.hwmKiB / MB]), reference: idleRss },
    );
  }
  for (const run of runs) {
    const name = run.label ?? `speed ${run.speed}`;
    const x = run.samples;
    // Speed 60 is cut into windows (median/range over them); speed 1 has too few readings per window, so one whole span.
    const per = (pick: (smp: Sample) => number, by: (smp: Sample) => number, scale = 1) =>
      run.speed === 1 ? [ratio(span(x, pick) * scale, span(x, by))] : deltas(x, pick).map((d, i) => ratio(d * scale, deltas(x, by)[i] ?? 0));
    const records = span(x, recorded);
    const windows = run.speed === 1 ? `one ${((span(x, (smp) => smp.atMs)) / 1000).toFixed(0)} s span` : `${plan.windows} windows`;
    const section = `CPU and disk, ${name}, ${windows}`;
    const writes = summarize(per((smp) => smp.io[counter], recorded));
    // The record as stored, in every log it is in; and the floor: one fresh page per fsync of the feed (group commit) that wrote it.
    const recordSize = { label: 'B stored per record (all logs)', value: ratio(span(x, storedBytes), records) };
    const floor = ratio(span(x, (smp) => smp.store.feed.commits) * PAGE_BYTES, records);
    const spanned = ratio(span(x, (smp) => smp.store.feed.commitPages) * PAGE_BYTES, records);
    const json = Math.max(span(x, (smp) => smp.store.payloadBytes), span(x, (smp) => smp.store.feed.recordBytes));
    rows.push(
      { section, metric: `CPU per reading, ${name}`, unit: 'µs', summary: summarize(per((smp) => smp.cpuMs, (smp) => smp.counts.readings, 1000)) },
      { section, metric: `CPU per published message, ${name}`, unit: 'µs', summary: summarize(per((smp) => smp.cpuMs, messages, 1000)) },
      { section, metric: `CPU load, ${name}`, unit: 'ms/s', summary: summarize(per((smp) => smp.cpuMs, (smp) => smp.atMs, 1000)), reference: { label: 'ms/s idle node', value: idleLoad } },
      { section, metric: `disk writes per record (${counterName})`, unit: 'B', summary: writes, reference: recordSize, target: { on: 'ratio', max: 2, text: '≤ 2x record' } },
      { section, metric: `disk writes per record (${counterName}) against the floor`, unit: 'B', summary: writes, reference: { label: 'B: one 4 KiB page per feed commit, per record', value: floor } },
      { section, metric: `disk writes per record (${counterName}) against the pages written`, unit: 'B', summary: writes, reference: { label: 'B: the 4 KiB pages each feed commit wrote into, per record', value: spanned } },
      { section, metric: 'record stored (frames in all logs)', unit: 'B', summary: summarize(per(storedBytes, recorded)), reference: { label: 'B JSON record', value: ratio(json, records) } },
      { section, metric: 'state.json writes in the span', unit: 'writes', summary: summarize([span(x, (smp) => smp.stateWrites)]) },
    );
  }
  return rows;
}

/** last - first of a plain series. */
function seriesSpan(values: readonly number[]): number {
  return (values.at(-1) ?? Number.NaN) - (values[0] ?? Number.NaN);
}

/** APIARY_BENCH_FLOWS_ROUNDS=3: rounds of the flows section (a start with Node-RED and one without each). */
function withFlowsOverrides(plan: FlowsPlan): FlowsPlan {
  const rounds = Number(process.env.APIARY_BENCH_FLOWS_ROUNDS);
  return Number.isInteger(rounds) && rounds >= 1 ? { ...plan, rounds } : plan;
}

/** Catch-up sizes above this run in the mesh simulation (catchup.ts, simulatedSizes); up to SIMULATED_MAX. */
const REAL_MAX = 40;
const SIMULATED_MAX = 500;

/**
 * APIARY_BENCH_CATCHUP_SIZES=20 and APIARY_BENCH_CATCHUP_PARTITION_S=20: one size, a shorter partition (for looking into one case;
 * a size above 40, like 50, runs in the simulation); APIARY_BENCH_CATCHUP_REPEATS=3: runs per size (and per checkout with --baseline), for a median and range.
 */
function withCatchupOverrides(plan: CatchupPlan): CatchupPlan {
  const given = process.env.APIARY_BENCH_CATCHUP_SIZES?.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 3 && n <= SIMULATED_MAX);
  const sizes = given && given.length > 0 ? { sizes: given.filter((n) => n <= REAL_MAX), simulatedSizes: given.filter((n) => n > REAL_MAX) } : {};
  const seconds = Number(process.env.APIARY_BENCH_CATCHUP_PARTITION_S);
  const repeats = Number(process.env.APIARY_BENCH_CATCHUP_REPEATS);
  return { ...plan, ...sizes, ...(seconds > 0 ? { partitionMs: seconds * 1000 } : {}), ...(Number.isInteger(repeats) && repeats > 1 ? { repeats } : {}) };
}

const SECTIONS = ['startup', 'steady', 'storage', 'broker', 'catchup', 'inference', 'arm64', 'packaged', 'flows', 'voice', 'mcp', 'tasks', 'payments', 'sim'] as const;
type Section = (typeof SECTIONS)[number];
/** What runs without --only: arm64 (minutes of emulation), packaged (builds a .deb) and flows (needs node-red) are asked for by name. */
const OPT_IN: readonly Section[] = ['arm64', 'packaged', 'flows'];
const DEFAULT_SECTIONS: readonly Section[] = SECTIONS.filter((s) => !OPT_IN.includes(s));
const USAGE = `usage: run.js [--quick] [--only ${SECTIONS.join('|')}[,...]] [--baseline <dir of another built checkout>]`;

function parseArgs(args: readonly string[]): { quick: boolean; sections: Set<Section>; baseline: string | undefined } {
  let quick = false;
  let sections = new Set<Section>(DEFAULT_SECTIONS);
  let baseline = process.env.APIARY_BENCH_BASELINE || undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? args[(i += 1)] : arg.slice('--only='.length);
      const names = (value ?? '').split(',').filter(Boolean);
      const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (names.length === 0 || bad.length > 0) throw new UsageError(`--only takes ${SECTIONS.join(', ')} (comma-separated); got ${value ?? 'nothing'}; ${USAGE}`);
      sections = new Set(names as Section[]);
    } else if (arg === '--baseline' || arg.startsWith('--baseline=')) {
      baseline = arg === '--baseline' ? args[(i += 1)] : arg.slice('--baseline='.length);
      if (!baseline) throw new UsageError(`--baseline takes the folder of another built checkout of Apiary; ${USAGE}`);
    } else throw new UsageError(`unknown argument ${arg}; ${USAGE}`);
  }
  return { quick, sections, baseline };
}

async function main(): Promise<void> {
  const { quick, sections, baseline: baselineDir } = parseArgs(process.argv.slice(2));
  // Checked before anything runs: a wrong path fails at once, naming the path and the fix.
  const baseline: Baseline | undefined = baselineDir ? await resolveBaseline(baselineDir) : undefined;
  if (baseline && sections.has('inference') && sections.size === 1) progress(`--baseline ${baseline.dir}: the inference section does not compare with it`);
  const plan = withNodeOverrides(quick ? QUICK : FULL);
  const brokerPlan = quick ? BROKER_QUICK : BROKER_FULL;
  const catchupPlan = withCatchupOverrides(quick ? CATCHUP_QUICK : CATCHUP_FULL);
  const inferencePlan = quick ? INFERENCE_QUICK : INFERENCE_FULL;
  const flowsPlan = withFlowsOverrides(quick ? FLOWS_QUICK : FLOWS_FULL);
  const voicePlan = quick ? VOICE_QUICK : VOICE_FULL;
  const tasksPlan = quick ? TASKS_QUICK : TASKS_FULL;
  const paymentsPlan = quick ? PAYMENTS_QUICK : PAYMENTS_FULL;
  const simPlan = quick ? SIM_QUICK : SIM_FULL;
  const storagePlan = quick ? STORAGE_QUICK : STORAGE_FULL;
  const res = new Resources();
  // Ctrl-C reaches the nodes too (same process group); this still removes the temp dirs.
  const interrupted = () => void res.closeAll().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const tmp = res.dir(await mkdtemp(path.join(os.tmpdir(), 'apiary-bench-')));
    // The shipped defaults, passed explicitly so an apiary.yaml in the cwd cannot change the result.
    const configFile = path.join(tmp, 'apiary.yaml');
    await writeFile(configFile, DEFAULT_CONFIG_YAML);
    const ours: NodeSide = { label: 'now', main: NODE_MAIN, configFile, nodeFlags: await serviceNodeFlags(packageRoot()), env: { APIARY_CODE_CACHE_DIR: path.join(tmp, 'code-cache') } };
    const theirNode = baseline && (sections.has('startup') || sections.has('steady')) ? await baselineNode(baseline, tmp, DEFAULT_CONFIG_YAML, progress) : undefined;
    const parts = [
      ...(sections.has('startup') ? [`${plan.startRuns} start-ups each`] : []),
      ...(sections.has('steady') ? [theirNode ? `${plan.steadyRepeats} x ${plan.durationMs / 1000} s of steady state per checkout` : `${plan.steadySolo > 1 ? `${plan.steadySolo} x ` : ''}${plan.durationMs / 1000} s of steady state`] : []),
      ...(sections.has('storage') ? [`${storagePlan.records} readings read back in plain and sealed`] : []),
      ...(sections.has('broker') ? ['the broker comparison'] : []),
      ...(sections.has('catchup') ? [`mesh catch-up for ${[...catchupPlan.sizes, ...(catchupPlan.simulatedSizes ?? []).map((n) => `${n} (simulated)`)].join(', ')} nodes`] : []),
      ...(sections.has('inference') ? ['inference per backend'] : []),
      ...(sections.has('arm64') ? [`${quick ? 1 : 3} emulated arm64 start-ups`] : []),
      ...(sections.has('packaged') ? [`${quick ? 3 : 7} start-ups each of the packaged app and the checkout`] : []),
      ...(sections.has('flows') ? [`${flowsPlan.rounds} start-ups each of the node alone and with Node-RED`] : []),
      ...(sections.has('tasks') ? [`${tasksPlan.tasks} tasks on a 5-node loopback mesh`] : []),
      ...(sections.has('payments') ? [`${paymentsPlan.vouchers} vouchers between 2 nodes, a book rebuilt from ${paymentsPlan.rebuildVouchers}`] : []),
      ...(sections.has('sim') ? [`the mesh simulation at ${simPlan.sizes.join(' and ')} nodes`] : []),
      ...(sections.has('voice') ? [`${voicePlan.rounds} start-ups each of the node with voice off and on, 5 spoken questions each`] : []),
      ...(sections.has('mcp') ? ['the MCP tool list and apiary mcp on stdio'] : []),
    ];
    progress(`${quick ? 'quick' : 'full'} run: ${parts.join(', then ')} (${os.cpus().length} CPUs, Node ${process.version}, CLK_TCK ${CLK_TCK})`);
    if (baseline) progress(`baseline: ${baseline.label} at ${baseline.dir} (its node, broker-server.js and catchup-child.js, taking turns with ours)`);
    if (sections.has('startup') || sections.has('steady')) {
      const flags = (side: NodeSide) => (side.nodeFlags.length > 0 ? side.nodeFlags.join(' ') : 'none');
      progress(`node flags of the service unit (${SERVICE_UNIT}; APIARY_BENCH_SERVICE_FLAGS=0 for none): ours ${flags(ours)}${theirNode ? `, ${theirNode.label}'s ${flags(theirNode)}` : ''}`);
    }
    if (sections.has('startup') || sections.has('steady')) {
      for (const side of theirNode ? [ours, theirNode] : [ours]) await primeCodeCache(res, tmp, side);
    }
    const startup = sections.has('startup') ? await measureStartup(res, tmp, ours, plan.startRuns, progress, theirNode) : undefined;
    // With a baseline, the main table shows our first session; the comparison, all of them.
    const steadyTurns: SteadyTurns | undefined = sections.has('steady') && theirNode ? await measureSteadyTurns(res, tmp, ours, theirNode, plan, plan.steadyRepeats, progress) : undefined;
    const soloSessions: SteadyResults[] = [];
    for (let i = 0; !steadyTurns && sections.has('steady') && i < plan.steadySolo; i += 1) {
      const dir = res.dir(await mkdtemp(path.join(tmp, 'steady-')));
      soloSessions.push(await measureSteady(res, dir, ours, plan, progress, plan.steadySolo > 1 ? `[${i + 1}/${plan.steadySolo}] ` : ''));
    }
    const steady = steadyTurns ? steadyTurns.now[0] : soloSessions[0];
    const broker: BrokerResults | undefined = sections.has('broker') ? await measureBrokers(res, tmp, brokerPlan, progress, baseline) : undefined;
    const catchup: CatchupResults | undefined = sections.has('catchup') ? await measureCatchup(res, tmp, catchupPlan, progress, baseline) : undefined;
    const inference: InferenceResults | undefined = sections.has('inference') ? await measureInference(inferencePlan, progress) : undefined;
    const arm64: Arm64Results | undefined = sections.has('arm64') ? await measureArm64(tmp, quick ? 1 : 3, progress) : undefined;
    const packaged: PackagedResults | undefined = sections.has('packaged') ? await measurePackaged(tmp, quick ? 3 : 7, progress) : undefined;
    const flows: FlowsResults | undefined = sections.has('flows') ? await measureFlows(tmp, flowsPlan, progress) : undefined;
    const voice: VoiceResults | undefined = sections.has('voice') ? await measureVoice(tmp, voicePlan, progress) : undefined;
    const mcp: McpResults | undefined = sections.has('mcp') ? await measureMcp(quick ? 3 : 7, progress) : undefined;
    const tasks: TasksResults | undefined = sections.has('tasks') ? await measureTasks(tmp, tasksPlan, progress) : undefined;
    const payments: PaymentsResults | undefined = sections.has('payments') ? await measurePayments(tmp, paymentsPlan, progress) : undefined;
    const sim: ScenarioResult[] | undefined = sections.has('sim') ? await measureSim(simPlan, progress) : undefined;
    const storage = sections.has('storage') ? await measureStorage(tmp, storagePlan, progress) : undefined;
    const budgets = startup || steady ? budgetRows(startup, steadyTurns ? steadyTurns.now : soloSessions, plan.durationMs, ours.nodeFlags).map(evaluate) : [];
    if (budgets.length > 0) process.stdout.write(`${renderTable(budgets)}\n`);
    const rows = [...(startup ? startupRows(startup) : []), ...(steady ? steadyRows(steady, plan) : [])].map(evaluate);
    if (rows.length > 0) process.stdout.write(`${renderTable(rows)}\n`);
    if (startup?.baseline) process.stdout.write(`${renderStartupCompare(startup)}\n`);
    if (steadyTurns) process.stdout.write(`${renderSteadyCompare(steadyTurns, plan.durationMs)}\n`);
    const storageTable = storage ? storageRows(storage).map(evaluate) : [];
    if (storageTable.length > 0) process.stdout.write(`${renderTable(storageTable)}\n`);
    if (broker) process.stdout.write(`${renderBroker(broker)}\n`);
    const meshRows = catchup ? catchupRows(catchup).map(evaluate) : [];
    if (meshRows.length > 0) process.stdout.write(`${renderTable(meshRows)}\n`);
    if (catchup?.baseline) process.stdout.write(`${renderCatchupCompare(catchup)}\n`);
    const modelRows = inference ? inferenceRows(inference).map(evaluate) : [];
    if (modelRows.length > 0) process.stdout.write(`${renderTable(modelRows)}\n`);
    const emulatedRows = arm64 ? arm64Rows(arm64).map(evaluate) : [];
    if (emulatedRows.length > 0) process.stdout.write(`${renderTable(emulatedRows)}\n`);
    const packagedTable = packaged ? packagedRows(packaged).map(evaluate) : [];
    if (packagedTable.length > 0) process.stdout.write(`${renderTable(packagedTable)}\n`);
    const flowsTable = flows ? flowsRows(flows).map(evaluate) : [];
    if (flowsTable.length > 0) process.stdout.write(`${renderTable(flowsTable)}\n`);
    const voiceTable = voice ? voiceRows(voice).map(evaluate) : [];
    if (voiceTable.length > 0) process.stdout.write(`${renderTable(voiceTable)}\n`);
    const mcpTable = mcp ? mcpRows(mcp).map(evaluate) : [];
    if (mcpTable.length > 0) process.stdout.write(`${renderTable(mcpTable)}\n`);
    const tasksTable = tasks ? tasksRows(tasks).map(evaluate) : [];
    if (tasksTable.length > 0) process.stdout.write(`${renderTable(tasksTable)}\n`);
    const paymentsTable = payments ? paymentsRows(payments).map(evaluate) : [];
    if (paymentsTable.length > 0) process.stdout.write(`${renderTable(paymentsTable)}\n`);
    const simTable = sim ? simRows(sim).map(evaluate) : [];
    if (simTable.length > 0) process.stdout.write(`${renderTable(simTable)}\n`);
    // Ours and, with --baseline, the baseline's.
    const starts = startup ? [startup, ...(startup.baseline ? [startup.baseline] : [])].flatMap((s) => [...s.cold, ...s.warm]) : [];
    const sessions = steadyTurns ? [...steadyTurns.now, ...steadyTurns.before] : soloSessions;
    const notes = [
      ...starts.some((r) => r.missedFirst) ? ['a start-up run missed the first reading (watcher subscribed late): its time is for a later reading'] : [],
      ...[...starts, ...sessions.flatMap((s) => s.nodes)].some((r) => !r.cleanExit) ? ['a node did not exit cleanly on SIGTERM'] : [],
      ...arm64?.runs.some((r) => r.exit.code !== 0 || r.exit.forced) ? ['an emulated arm64 node did not exit cleanly on SIGTERM'] : [],
      ...packaged && [...packaged.packaged, ...packaged.checkout].some((r) => r.exit.code !== 0 || r.exit.forced) ? ['a packaged-or-checkout node did not exit cleanly on SIGTERM'] : [],
      ...flows && [...flows.alone, ...flows.withNodeRed].some((r) => r.exit.code !== 0 || r.exit.forced) ? ['a node of the flows section did not exit cleanly on SIGTERM'] : [],
      ...voice && [...voice.off, ...voice.on].some((r) => r.exit.code !== 0 || r.exit.forced) ? ['a node of the voice section did not exit cleanly on SIGTERM'] : [],
      ...catchup?.notes ?? [],
    ];
    for (const note of notes) progress(`NOTE: ${note}`);
    const summary = {
      date: new Date().toISOString(),
      quick,
      sections: [...sections],
      plan: { ...plan, broker: brokerPlan, catchup: catchupPlan, inference: inferencePlan, ...(flows ? { flows: flowsPlan } : {}) },
      host: { cpus: os.cpus().length, node: process.version, clkTck: CLK_TCK, ...(steady ? { ioCounter: ioCounter(steady.nodes) } : {}) },
      budgetRows: budgets,
      rows,
      ...(startup?.baseline ? { startupCompareRows: startupCompareRows(startup) } : {}),
      ...(steadyTurns ? { steadyCompareRows: steadyCompareRows(steadyTurns, plan.durationMs) } : {}),
      ...(broker ? { brokerRows: brokerRows(broker) } : {}),
      ...(catchup ? { catchupRows: meshRows } : {}),
      ...(catchup?.baseline ? { catchupCompareRows: catchupCompareRows(catchup) } : {}),
      ...(baseline ? { baseline } : {}),
      ...(inference ? { inferenceRows: modelRows } : {}),
      ...(arm64 ? { arm64Rows: emulatedRows } : {}),
      ...(packaged ? { packagedRows: packagedTable } : {}),
      ...(flows ? { flowsRows: flowsTable } : {}),
      ...(voice ? { voiceRows: voiceTable } : {}),
      ...(mcp ? { mcpRows: mcpTable } : {}),
      ...(tasks ? { tasksRows: tasksTable } : {}),
      ...(payments ? { paymentsRows: paymentsTable } : {}),
      ...(sim ? { simRows: simTable } : {}),
      ...(storage ? { storageRows: storageTable } : {}),
      notes,
      raw: {
        startup, steady, ...(steadyTurns ? { steadyTurns } : {}), ...(soloSessions.length > 1 ? { steadySessions: soloSessions } : {}), broker, catchup, inference,
        arm64: arm64 && { ...arm64, runs: arm64.runs.map(({ output: _output, ...r }) => r) },
        flows,
        voice,
        mcp,
        tasks,
        payments,
        sim,
        storage,
        packaged: packaged && { arch: packaged.arch, packaged: packaged.packaged.map(({ output: _output, ...r }) => r), checkout: packaged.checkout.map(({ output: _output, ...r }) => r) },
      },
    };
    await writeFile(RESULTS_FILE, `${JSON.stringify(summary, null, 2)}\n`);
    progress(`wrote ${RESULTS_FILE}`);
  } finally {
    await res.closeAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(err instanceof UsageError ? `bench: ${err.message}\n` : `bench: harness failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
