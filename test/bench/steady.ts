/**
 * Steady state: a node at --speed 60 (one simulated minute per real second,
 * so about 60x the real workload), a node at speed 1 and an idle Node.js
 * process run side by side; /proc, the MQTT message counts and the segment
 * files are sampled at the same instants, cutting the run into windows.
 * With a baseline checkout, such sessions of ours and of its node take turns
 * (measureSteadyTurns), one checkout at a time. `sealed` adds a third node at
 * speed 60 whose readings are sealed for a recipient and whose decisions are
 * kept to itself (private entries of its feed: the one write path of sealed
 * streams), measured the same way.
 */
import { watch } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { NodeSide } from './baseline.js';
import { cpuMs, ioCounters, memory, scanStreams, type IoCounters, type Memory, type StreamScan } from './proc.js';
import { BusWatcher, Child, freePort, sleep, withTimeout, type MessageCounts, type Resources } from './processes.js';

export interface SteadyPlan {
  /** Measurement ends (and RSS is read) this long after the spawn. */
  readonly durationMs: number;
  /** Start-up work (model loading, identity) is kept out of the windows. */
  readonly warmupMs: number;
  readonly windows: number;
  /** Also a speed 60 node with sealed streams (APIARY_BENCH_STEADY_SEALED=1). */
  readonly sealed?: boolean;
}

export interface Sample {
  /** ms since the processes were spawned. */
  readonly atMs: number;
  readonly cpuMs: number;
  readonly io: IoCounters;
  readonly counts: MessageCounts;
  readonly store: StreamScan;
  /** state.json replacements seen so far (inotify on the data dir). */
  readonly stateWrites: number;
}

export interface NodeRun {
  readonly speed: number;
  /** What sets it apart from the shipped config's nodes, if anything. */
  readonly label?: string;
  readonly samples: Sample[];
  readonly memory: Memory;
  readonly cleanExit: boolean;
}

export interface SteadyResults {
  /** The shipped config at speed 60 and speed 1. */
  readonly nodes: NodeRun[];
  /** With `sealed`: the node with sealed streams (kept apart: the budgets are the shipped config's). */
  readonly sealed?: NodeRun;
  readonly idle: { readonly cpuMs: number[]; readonly atMs: number[]; readonly memory: Memory };
}

/** Messages the watcher counted so far, of every kind. */
export const messages = (s: Sample) => s.counts.readings + s.counts.models + s.counts.decisions + s.counts.other;

/**
 * Records the node stored: each reading, model output and decision is
 * published once, after it is stored, whatever the layout on disk (before
 * issue 16 a shared record was in its stream's log and in the feed; since,
 * only in the feed).
 */
export const recorded = (s: Sample) => s.counts.readings + s.counts.models + s.counts.decisions;

/** Bytes of whole frames in every log: the streams' own logs and the own feed. */
export const storedBytes = (s: Sample) => s.store.segmentBytes + s.store.feed.bytes;

/** The page a write dirties; every fsync leaves the next append to dirty a fresh one. */
export const PAGE_BYTES = 4096;

/** last - first of a field over the samples. */
export const span = (samples: readonly Sample[], pick: (s: Sample) => number) => {
  const first = samples[0];
  const last = samples.at(-1);
  return first && last ? pick(last) - pick(first) : Number.NaN;
};

/** write_bytes when the kernel accounts it (it may read 0 in some containers), else wchar. */
export function ioCounter(runs: readonly NodeRun[]): 'writeBytes' | 'wchar' {
  return runs.every((r) => (r.samples.at(-1)?.io.writeBytes ?? 0) > 0) ? 'writeBytes' : 'wchar';
}

interface Running {
  readonly speed: number;
  readonly dataDir: string;
  readonly child: Child;
  readonly bus: BusWatcher;
  readonly stateWrites: () => number;
  readonly samples: Sample[];
}

async function launch(res: Resources, dir: string, node: NodeSide, speed: number, configFile = node.configFile, name = `steady-${speed}`): Promise<Running> {
  const dataDir = path.join(dir, name);
  // Created here so it can be watched from the start; the node creates the rest.
  await mkdir(dataDir);
  let stateWrites = 0;
  // Each atomic state write ends in a rename onto state.json: one event per write.
  const watcher = watch(dataDir, (_event, name) => { if (name === 'state.json') stateWrites += 1; });
  res.add(() => watcher.close());
  const port = await freePort();
  const bus = res.watcher(new BusWatcher(port));
  const child = res.child(Child.apiary(['--port', String(port), '--data-dir', dataDir, '--config', configFile, '--speed', String(speed)], node.main, node.nodeFlags, node.env));
  return { speed, dataDir, child, bus, stateWrites: () => stateWrites, samples: [] };
}

async function sample(node: Running, t0: number): Promise<Sample> {
  const counts = node.bus.snapshot();
  const stateWrites = node.stateWrites();
  const atMs = performance.now() - t0;
  const [cpu, io, store] = await Promise.all([cpuMs(node.child.pid), ioCounters(node.child.pid), scanStreams(node.dataDir)]);
  return { atMs, cpuMs: cpu, io, counts, store, stateWrites };
}

/** The node's config with its readings sealed for one recipient and only model outputs shared (decisions are then sealed to itself). */
async function sealedConfig(node: NodeSide, dir: string): Promise<string> {
  const doc = parseDocument(await readFile(node.configFile, 'utf8'));
  doc.setIn(['mesh', 'share'], ['models']);
  doc.setIn(['mesh', 'private'], [{ stream: 'readings', recipients: ['abcdefghijkl'] }]);
  const file = path.join(dir, 'apiary-sealed.yaml');
  await writeFile(file, doc.toString());
  return file;
}

/** One session: `node`'s speed 60 and speed 1 nodes and an idle process; `who` prefixes the progress lines. */
export async function measureSteady(res: Resources, dir: string, node: NodeSide, plan: SteadyPlan, progress: (line: string) => void, who = ''): Promise<SteadyResults> {
  const t0 = performance.now();
  const nodes = [await launch(res, dir, node, 60), await launch(res, dir, node, 1)];
  if (plan.sealed) nodes.push(await launch(res, dir, node, 60, await sealedConfig(node, dir), 'steady-60-sealed'));
  const idle = res.child(new Child(['-e', 'setInterval(() => {}, 1000)'], { output: false }));
  await Promise.race([
    withTimeout(Promise.all(nodes.map((n) => n.bus.firstReading)), 60_000, 'the first readings'),
    ...nodes.map((n) => n.child.died),
  ]);
  // Windows start after the warm-up, and after the first readings on a slow board.
  const start = Math.max(plan.warmupMs, performance.now() - t0 + 1000);
  const windowMs = Math.max(1000, (plan.durationMs - start) / plan.windows);
  progress(`${who}steady state: speed 60 and speed 1 nodes running, ${plan.windows} windows of ${(windowMs / 1000).toFixed(1)} s from ${(start / 1000).toFixed(1)} s`);
  const idleCpu: number[] = [];
  const idleAt: number[] = [];
  for (let i = 0; i <= plan.windows; i += 1) {
    await sleep(t0 + start + i * windowMs - performance.now());
    await Promise.race([Promise.all(nodes.map(async (n) => n.samples.push(await sample(n, t0)))), ...nodes.map((n) => n.child.died)]);
    idleAt.push(performance.now() - t0);
    idleCpu.push(await cpuMs(idle.pid));
    const fast = nodes[0]?.samples.at(-1);
    if (i > 0 && fast) progress(`  ${who}window ${i}/${plan.windows} at ${(fast.atMs / 1000).toFixed(1)} s: speed 60 has ${fast.counts.readings} readings, ${recorded(fast)} records, ${fast.cpuMs.toFixed(0)} ms CPU`);
  }
  const memories = await Promise.all(nodes.map((n) => memory(n.child.pid)));
  const idleMemory = await memory(idle.pid);
  const exits = await Promise.all(nodes.map((n) => n.child.stop()));
  await idle.stop();
  await Promise.all(nodes.map((n) => n.bus.close()));
  const runs: NodeRun[] = nodes.map((n, i) => ({
    speed: n.speed,
    ...(i === 2 ? { label: 'speed 60, sealed streams' } : {}),
    samples: n.samples,
    memory: memories[i] as Memory,
    cleanExit: exits[i]?.code === 0 && !exits[i]?.forced,
  }));
  return {
    nodes: runs.slice(0, 2),
    ...(runs[2] ? { sealed: runs[2] } : {}),
    idle: { cpuMs: idleCpu, atMs: idleAt, memory: idleMemory },
  };
}

export interface SteadyTurns {
  readonly label: string;
  readonly now: SteadyResults[];
  readonly before: SteadyResults[];
}

/** `repeats` sessions of each checkout, ours and the baseline's taking turns (swapping who goes first every other repeat). */
export async function measureSteadyTurns(res: Resources, tmp: string, ours: NodeSide, baseline: NodeSide, plan: SteadyPlan, repeats: number, progress: (line: string) => void): Promise<SteadyTurns> {
  const turns: SteadyTurns = { label: baseline.label, now: [], before: [] };
  for (let r = 0; r < repeats; r += 1) {
    const session = async (node: NodeSide, into: SteadyResults[], name: string) => {
      const dir = path.join(tmp, `steady-${name}-${r}`);
      await mkdir(dir);
      into.push(await measureSteady(res, dir, node, plan, progress, `[${node.label} ${r + 1}/${repeats}] `));
    };
    const now = () => session(ours, turns.now, 'now');
    const then = () => session(baseline, turns.before, 'before');
    for (const step of r % 2 === 1 ? [then, now] : [now, then]) await step();
  }
  return turns;
}
