/**
 * Start-up timing: spawn -> first reading seen on MQTT, for a fresh data dir
 * (identity created, streams created) and again on the same dir (warm: identity
 * read, streams recovered), alternated with `node -e 0` so all three see the
 * same machine load. With a baseline checkout, its node starts the same
 * way in each run too, ours and it swapping places every other run.
 */
import path from 'node:path';
import type { NodeSide } from './baseline.js';
import { BusWatcher, Child, freePort, withTimeout, type Resources } from './processes.js';
import { cpuMs, listStreams, readFeedRecords, readStream } from './proc.js';

const START_TIMEOUT_MS = 60_000;

export interface StartRun {
  /** ms from spawn to the first readings/# message arriving at the watcher. */
  readonly firstReadingMs: number;
  /** ms from spawn to the "MQTT broker:" stdout line (printed once start() returns). */
  readonly brokerLineMs: number;
  /**
   * CPU (user + system, all threads) the node had used when the first reading
   * arrived, and at the "MQTT broker:" line: less swayed by other processes
   * on a busy machine than the wall-clock times (10 ms ticks).
   */
  readonly cpuAtFirstReadingMs?: number;
  readonly cpuAtBrokerLineMs?: number;
  /** The watcher's first reading was not the first one this run stored (it connected too late). */
  readonly missedFirst: boolean;
  readonly cleanExit: boolean;
}

export interface StartupResults {
  readonly noopMs: number[];
  readonly cold: StartRun[];
  readonly warm: StartRun[];
  /**
   * Ours, cold, with the code cache off (APIARY_CODE_CACHE_DIR=off): as the
   * first start after an install or an update, which compiles the bundle
   * from source. `cold` and `warm` find the code the run's first start cached.
   */
  readonly noCache: StartRun[];
  /** With --baseline: that checkout's node, run i taken in the same round as ours. */
  readonly baseline?: { readonly label: string; readonly cold: StartRun[]; readonly warm: StartRun[] };
}

async function timeNoop(res: Resources): Promise<number> {
  const child = res.child(new Child(['-e', '0'], { output: false }));
  return (await withTimeout(child.exited, START_TIMEOUT_MS, 'node -e 0')).atMs;
}

/** The readings stream (older builds used one stream per channel). */
const isReadingStream = (name: string) => name === 'readings' || name.startsWith('readings.');
/** Where readings are stored, by name: each readings stream's own log, and (issue 16: shared readings are written once, there) the own feed. */
const FEED = '(feed)';

async function storedByStream(dataDir: string): Promise<Map<string, Buffer[]>> {
  const stored = new Map<string, Buffer[]>();
  for (const stream of (await listStreams(dataDir)).filter(isReadingStream)) stored.set(stream, await readStream(dataDir, stream));
  stored.set(FEED, await readFeedRecords(dataDir, 'reading'));
  return stored;
}

async function readingCounts(dataDir: string): Promise<Map<string, number>> {
  return new Map([...(await storedByStream(dataDir))].map(([name, records]) => [name, records.length]));
}

/** The readings stored after `before` (the per-stream record counts at spawn), as "channel@t". */
async function storedReadings(dataDir: string, before: Map<string, number>): Promise<{ key: string; t: number }[]> {
  const out: { key: string; t: number }[] = [];
  for (const [stream, records] of await storedByStream(dataDir)) {
    for (const payload of records.slice(before.get(stream) ?? 0)) {
      const { channel, t } = JSON.parse(payload.toString('utf8')) as { channel: string; t: number };
      out.push({ key: `${channel}@${t}`, t });
    }
  }
  return out;
}

async function startRun(res: Resources, dataDir: string, node: NodeSide, env = node.env): Promise<StartRun> {
  const before = await readingCounts(dataDir);
  const port = await freePort();
  // The watcher starts knocking before the spawn, so it is subscribed by the time readings flow.
  const watcher = res.watcher(new BusWatcher(port));
  const child = res.child(Child.apiary(['--port', String(port), '--data-dir', dataDir, '--config', node.configFile], node.main, node.nodeFlags, env));
  const first = await Promise.race([withTimeout(watcher.firstReading, START_TIMEOUT_MS, 'the first reading'), child.died]);
  const cpuAtFirstReadingMs = await cpuMs(child.pid);
  const brokerLineMs = await Promise.race([withTimeout(child.brokerLine, START_TIMEOUT_MS, 'the "MQTT broker:" line'), child.died]);
  const cpuAtBrokerLineMs = await cpuMs(child.pid);
  const exit = await child.stop();
  await watcher.close();
  // Streams are appended concurrently, so publish order need not follow t: a
  // reading missed before the watcher subscribed shows up as a stored reading
  // no later than the first one received, that was never received.
  const stored = await storedReadings(dataDir, before);
  return {
    firstReadingMs: first.at - child.spawnedAt,
    brokerLineMs,
    cpuAtFirstReadingMs,
    cpuAtBrokerLineMs,
    missedFirst: stored.some((r) => r.t <= first.t && !watcher.firstReadings.has(r.key)),
    cleanExit: exit.code === 0 && !exit.forced,
  };
}

const describe = (r: StartRun) => `${r.firstReadingMs.toFixed(0)} ms (broker line ${r.brokerLineMs.toFixed(0)} ms${r.missedFirst ? ', MISSED the first reading' : ''}${r.cleanExit ? '' : ', unclean exit'})`;

/** A cold start in a new data dir, then a warm one in the same dir. */
async function coldWarm(res: Resources, dataDir: string, node: NodeSide): Promise<{ cold: StartRun; warm: StartRun }> {
  const cold = await startRun(res, dataDir, node);
  return { cold, warm: await startRun(res, dataDir, node) };
}

/**
 * One start, not measured, that writes the node's code cache (runtime/cli/code-cache.ts)
 * as the first start on a board does: the starts and steady-state sessions
 * measured after it find the code cached, and none pays the cache's one
 * write (about 2 MB) inside its measured span.
 */
export async function primeCodeCache(res: Resources, tmp: string, node: NodeSide): Promise<void> {
  await startRun(res, path.join(tmp, `start-prime-${node.label}`), node);
}

export async function measureStartup(res: Resources, tmp: string, ours: NodeSide, runs: number, progress: (line: string) => void, baseline?: NodeSide): Promise<StartupResults> {
  const results = { noopMs: [] as number[], cold: [] as StartRun[], warm: [] as StartRun[], noCache: [] as StartRun[] };
  const before = { cold: [] as StartRun[], warm: [] as StartRun[] };
  for (let i = 1; i <= runs; i += 1) {
    const noop = await timeNoop(res);
    results.noopMs.push(noop);
    // Data dirs that do not exist yet: the node creates them.
    const now = async () => {
      const r = await coldWarm(res, path.join(tmp, `start-${i}`), ours);
      results.cold.push(r.cold);
      results.warm.push(r.warm);
      const noCache = await startRun(res, path.join(tmp, `start-nocache-${i}`), ours, { ...ours.env, APIARY_CODE_CACHE_DIR: 'off' });
      results.noCache.push(noCache);
      return `${baseline ? 'now ' : ''}cold ${describe(r.cold)}, warm ${describe(r.warm)}, cold without code cache ${describe(noCache)}`;
    };
    const then = baseline && (async () => {
      const r = await coldWarm(res, path.join(tmp, `start-before-${i}`), baseline);
      before.cold.push(r.cold);
      before.warm.push(r.warm);
      return `${baseline.label} cold ${describe(r.cold)}, warm ${describe(r.warm)}`;
    });
    const lines: string[] = [];
    for (const step of then ? (i % 2 === 0 ? [then, now] : [now, then]) : [now]) lines.push(await step());
    progress(`start-up ${i}/${runs}: node -e 0 ${noop.toFixed(0)} ms, ${lines.join('; ')}`);
  }
  return { ...results, ...(baseline ? { baseline: { label: baseline.label, ...before } } : {}) };
}
