/**
 * Mesh catch-up benchmark (the issue: "catch-up after a 60 s partition at 10
 * entries/s per node: bytes sent divided by the bytes of the missing entries
 * (target at most 2x), time to converge for 5, 10 and 20 nodes").
 *
 * N in-process mesh nodes (test/support/mesh-node.ts: each its own owner,
 * identity, data dir and aedes broker), every link dialled through its own
 * TcpProxy. They converge, are split into two halves (every proxy across the
 * split cut), every node appends small readings at a fixed rate for the
 * partition, writing stops, each half settles, and the links heal. From the
 * heal on: how long until every node holds every entry of every origin (feed
 * heads polled), the catch-up payload (mesh.catchup_bytes_sent) and every
 * byte through the proxies, against the bytes of the entries each node lacked
 * at the heal. Anti-entropy is set far out, so this measures the pull
 * catch-up that a link coming up starts (hello, have, want, entries).
 *
 * Each size runs in a fresh child process (catchup-child.ts), so its RSS and
 * CPU are the mesh's alone; its nodes run in worker threads
 * (catchup-shard.ts), one per 10 nodes and at most one per CPU, so up to 10
 * nodes share one event loop: times are an upper bound for a mesh of boards,
 * each with its own CPU.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { TcpProxy } from '../../runtime/cli/demo/link-proxy.js';
import type { ConfigInput } from '../../runtime/config/schema.js';
import { ownerKeyOf } from '../support/mesh-node.js';
import type { Baseline } from './baseline.js';
import type { ShardData, ShardPoll, ShardReply, ShardRequest } from './catchup-shard.js';
import type { ScenarioResult } from '../sim/scenario.js';
import { memory } from './proc.js';
import { sleep, withTimeout, type Resources } from './processes.js';
import { measureSim } from './sim.js';
import { ratio, summarize } from './stats.js';

export interface CatchupPlan {
  readonly sizes: readonly number[];
  /** How long the halves stay apart, writing. */
  readonly partitionMs: number;
  /** Entries each node appends per second during the partition. */
  readonly ratePerNode: number;
  /** Limits: the run is reported as failed, never left hanging. */
  readonly setupTimeoutMs: number;
  readonly halvesTimeoutMs: number;
  readonly convergeTimeoutMs: number;
  /** After convergence (and every cross link back), trailing traffic still counted. */
  readonly settleMs: number;
  /** Runs per size (and per checkout, with --baseline); 1 unless set (APIARY_BENCH_CATCHUP_REPEATS). */
  readonly repeats?: number;
  /**
   * Sizes that many real nodes do not fit on this 2-core machine (20 already take minutes and
   * 0.4 GB): run by the discrete-event simulation (test/sim, the real gossip code on a simulated
   * clock and network) with the same partition, and reported as simulated.
   */
  readonly simulatedSizes?: readonly number[];
}

export const CATCHUP_FULL: CatchupPlan = { sizes: [5, 10, 20], simulatedSizes: [50], partitionMs: 60_000, ratePerNode: 10, setupTimeoutMs: 90_000, halvesTimeoutMs: 30_000, convergeTimeoutMs: 180_000, settleMs: 2_000 };
export const CATCHUP_QUICK: CatchupPlan = { sizes: [5, 10], simulatedSizes: [50], partitionMs: 10_000, ratePerNode: 10, setupTimeoutMs: 60_000, halvesTimeoutMs: 20_000, convergeTimeoutMs: 90_000, settleMs: 2_000 };

/**
 * Mesh settings of every node: the shipped commit interval and hop limit;
 * anti-entropy out of the way; no dial-back, which would link straight to a
 * peer's broker (the address a link came from, the port its hello names),
 * around the proxies, so the partition would leak. Relayed plain links
 * accepted: every link goes through a TcpProxy, so a link token bound to the
 * proxy's address reaches the node from another connection (the default
 * refuses it as mesh.rejected.link_unbound, and no link would come up);
 * the token's signature and replay checks still run.
 */
const MESH_SETTINGS = { commitInterval: '200ms', antiEntropyInterval: '1h', maxHops: 4, dialBack: false, discovery: { mdns: false }, acceptRelayedPlainLinks: true } satisfies ConfigInput['mesh'];
const CHILD_MAIN = fileURLToPath(new URL('./catchup-child.js', import.meta.url));
const SHARD_MAIN = new URL('./catchup-shard.js', import.meta.url);
const POLL_MS = 100;
/**
 * Setup writes one entry per node, waits this long for it to spread, and
 * repeats. Needed because FeedStore.apply assigns a new origin's log before
 * it is open, so a concurrent FeedStore.flush (Mesh.commit of own entries)
 * rejects with STORAGE_CLOSED, counted as mesh.errors, and that commit's
 * entries are never forwarded: with anti-entropy an hour away, only the next
 * entry (a gap, then a want) brings them.
 */
const SETUP_ROUND_MS = 3_000;
const STOP_TIMEOUT_MS = 15_000;
export const KiB = 1024;

type Progress = (line: string) => void;

export interface Topology {
  readonly name: string;
  /** Undirected links; each is dialled both ways, through two proxies. */
  readonly edges: readonly (readonly [number, number])[];
  /** The two sides of the partition: nodes [0, split) and [split, n). */
  readonly split: number;
  readonly diameter: number;
  readonly halfDiameters: readonly [number, number];
  readonly crossEdges: number;
}

/**
 * Up to 5 nodes: all-to-all. Beyond: a ring with chords, the circulant
 * C_n(1, 3): node i links to i±1 and i±3 (4 neighbours), so the whole mesh
 * and each half (two arcs of the ring) stay within the default 4 hops of
 * live gossip, as a field of hives in radio range of a few others would be.
 */
export function topology(n: number): Topology {
  const keys = new Set<string>();
  const edges: [number, number][] = [];
  const add = (a: number, b: number) => {
    const [i, j] = a < b ? [a, b] : [b, a];
    if (i === j || keys.has(`${i}-${j}`)) return;
    keys.add(`${i}-${j}`);
    edges.push([i, j]);
  };
  const allToAll = n <= 5;
  for (let i = 0; i < n; i++) {
    if (allToAll) for (let j = i + 1; j < n; j++) add(i, j);
    else for (const step of [1, 3]) add(i, (i + step) % n);
  }
  const split = Math.floor(n / 2);
  const side = (i: number) => (i < split ? 0 : 1);
  const all = Array.from({ length: n }, (_, i) => i);
  return {
    name: allToAll ? `all-to-all (${n - 1} neighbours each)` : 'ring + chords C_n(1,3): i±1, i±3 (4 neighbours each)',
    edges,
    split,
    diameter: diameterOf(all, edges),
    halfDiameters: [diameterOf(all.filter((i) => side(i) === 0), edges), diameterOf(all.filter((i) => side(i) === 1), edges)],
    crossEdges: edges.filter(([i, j]) => side(i) !== side(j)).length,
  };
}

/** Longest shortest path within `nodes` using only links between them (Infinity if split apart). */
function diameterOf(nodes: readonly number[], edges: readonly (readonly [number, number])[]): number {
  const inside = new Set(nodes);
  const adj = new Map<number, number[]>(nodes.map((i) => [i, []]));
  for (const [i, j] of edges) {
    if (!inside.has(i) || !inside.has(j)) continue;
    adj.get(i)?.push(j);
    adj.get(j)?.push(i);
  }
  let worst = 0;
  for (const start of nodes) {
    const dist = new Map<number, number>([[start, 0]]);
    const queue = [start];
    for (let q = 0; q < queue.length; q++) {
      const at = queue[q] as number;
      for (const next of adj.get(at) ?? []) {
        if (dist.has(next)) continue;
        dist.set(next, (dist.get(at) ?? 0) + 1);
        queue.push(next);
      }
    }
    if (dist.size < nodes.length) return Number.POSITIVE_INFINITY;
    worst = Math.max(worst, ...dist.values());
  }
  return worst;
}

export interface CatchupRun {
  readonly nodes: number;
  /** Worker threads the nodes ran in (one event loop each). */
  readonly threads?: number;
  readonly topology: Omit<Topology, 'edges'> & { readonly edges: string[] };
  readonly ok: boolean;
  readonly failure?: string;
  /** Phases, ms. */
  readonly setupMs?: number;
  /** Rounds of one entry per node until every feed was everywhere; mesh.errors counted meanwhile. */
  readonly setupRounds?: number;
  readonly setupErrors?: number;
  readonly writing?: { readonly plannedPerNode: number; readonly written: number; readonly skipped: number; readonly entryBytes: { readonly min: number; readonly median: number; readonly max: number }; readonly elapsedMs: number; readonly achievedPerNodePerS: number };
  /** Each half held all of its own entries before the heal (live gossip kept up). */
  readonly halvesConverged?: boolean;
  readonly halvesMs?: number;
  /** Live gossip inside the halves: counters summed over the nodes and CPU, from the cut until the heal. */
  readonly partition?: { readonly counters: Record<string, number>; readonly cpuMs: number; readonly ms: number };
  readonly missing?: { readonly entries: number; readonly bytes: number; readonly perNodeEntries: number[]; readonly crossEntries: number };
  /** From the heal: converged (undefined: timed out, then the time waited). */
  readonly convergeMs?: number;
  readonly waitedMs?: number;
  readonly perNodeMs?: (number | null)[];
  /** Heal -> first bytes through each cut proxy (directed link), null if it stayed quiet. */
  readonly reconnectMs?: (number | null)[];
  /** Heal -> the first cross pair carrying bytes both ways (catch-up can only start then). */
  readonly firstPairMs?: number;
  readonly catchup?: {
    readonly payloadBytes: number;
    readonly entriesSent: number;
    readonly wireBytes: number;
    readonly wireBytesCross: number;
    readonly duplicates: number;
    readonly wantsSent: number;
    readonly counters: Record<string, number>;
  };
  readonly cpuMs?: number;
  readonly rss?: { readonly beforeMB: number; readonly healMB: number; readonly convergedMB: number; readonly peakMB: number };
}

/** A run as the parent keeps it: which repeat of its size it was. */
export type CatchupRunOf = CatchupRun & { readonly repeat: number };

export interface CatchupResults {
  readonly plan: CatchupPlan;
  readonly mesh: typeof MESH_SETTINGS;
  readonly runs: CatchupRunOf[];
  /** With --baseline: the same sizes run by that checkout's catchup-child.js, taking turns with ours. */
  readonly baseline?: { readonly label: string; readonly runs: CatchupRunOf[] };
  /** plan.simulatedSizes, run by the mesh simulation (ours only). */
  readonly simulated: ScenarioResult[];
  readonly notes: string[];
}

/** Adds counters into a running sum. */
function addCounters(sum: Record<string, number>, more: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(more)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

const rssMB = async () => (await memory(process.pid)).rssKiB / KiB;

/** Worker threads hosting the nodes: one per 10 nodes, at most one per CPU. */
function shardCount(n: number): number {
  return Math.max(1, Math.min(os.cpus().length, Math.ceil(n / 10)));
}

/** One worker thread of nodes (catchup-shard.ts), asked one request at a time. */
class ShardClient {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (reply: ShardReply) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  private exited = false;

  constructor(data: ShardData) {
    this.worker = new Worker(SHARD_MAIN, { workerData: data });
    this.worker.on('message', (message: { id: number; reply?: ShardReply; error?: string }) => {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.reply) waiter?.resolve(message.reply);
      else waiter?.reject(new Error(message.error ?? 'shard failed'));
    });
    const fail = (err: Error) => {
      for (const waiter of this.waiting.values()) waiter.reject(err);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => {
      this.exited = true;
      fail(new Error(`a node thread exited (code ${code})`));
    });
  }

  request<Op extends ShardReply['op']>(request: ShardRequest, expect: Op): Promise<Extract<ShardReply, { op: Op }>> {
    if (this.exited) return Promise.reject(new Error('a node thread has exited'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (reply) => (reply.op === expect ? resolve(reply as Extract<ShardReply, { op: Op }>) : reject(new Error(`expected ${expect}, got ${reply.op}`))),
        reject,
      });
      this.worker.postMessage({ id, request });
    });
  }

  async terminate(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
  }
}

/**
 * One mesh size, start to stop, in the calling process (catchup-child.ts),
 * its nodes in worker threads; everything it opened is closed before it
 * returns, also when it fails.
 */
export async function runSize(res: Resources, tmp: string, n: number, plan: CatchupPlan, progress: Progress): Promise<CatchupRun> {
  const topo = topology(n);
  const side = (i: number) => (i < topo.split ? 0 : 1);
  const threads = shardCount(n);
  const base: CatchupRun = { nodes: n, threads, topology: { ...topo, edges: topo.edges.map(([i, j]) => `${i}-${j}`) }, ok: false };
  progress(`catch-up, ${n} nodes in ${threads} thread(s): ${topo.name}; ${topo.edges.length} links (${topo.edges.length * 2} proxies), diameter ${topo.diameter}, halves ${topo.split}|${n - topo.split} with diameters ${topo.halfDiameters.join('|')}, ${topo.crossEdges} links across the split`);
  const dir = path.join(tmp, `catchup-${n}`);
  await mkdir(dir, { recursive: true });
  const shards: ShardClient[] = [];
  /** "i-j": the proxy node i dials to reach node j. */
  const proxies = new Map<string, TcpProxy>();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    const stops = await Promise.allSettled(shards.map((s) => withTimeout(s.request({ op: 'stop', timeoutMs: STOP_TIMEOUT_MS }, 'stopped'), STOP_TIMEOUT_MS + 5_000, 'a node thread to stop')));
    await Promise.allSettled(shards.map((s) => s.terminate()));
    await Promise.allSettled([...proxies.values()].map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    const failed = stops.reduce((sum, s) => sum + (s.status === 'fulfilled' ? s.value.failed : 1), 0);
    if (failed > 0) progress(`catch-up, ${n} nodes: ${failed} node(s) or thread(s) did not stop within ${STOP_TIMEOUT_MS / 1000} s (threads terminated)`);
  };
  res.add(close); // also on a signal, or if this run throws before its own finally
  const beforeMB = await rssMB();
  const t0 = performance.now();
  let run: CatchupRun = base;
  try {
    const dirs = Array.from({ length: n }, (_, i) => path.join(dir, `node-${i}`));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    // Contiguous blocks of nodes per thread: with two threads, each holds one side of the split.
    const shardOf = (i: number) => Math.min(threads - 1, Math.floor((i * threads) / n));
    for (let s = 0; s < threads; s++) {
      const specs = dirs.flatMap((d, i) => (shardOf(i) === s ? [{ index: i, name: `hive-${i}`, dir: d }] : []));
      shards.push(new ShardClient({ nodes: specs, trustedOwners: owners, mesh: MESH_SETTINGS }));
    }
    const ids: string[] = [];
    const ports: number[] = [];
    for (const started of await Promise.all(shards.map((s) => s.request({ op: 'start' }, 'started')))) {
      for (const node of started.nodes) {
        ids[node.index] = node.nodeId;
        ports[node.index] = node.port;
      }
    }
    // Every proxy first, then every link at once: no link is up before all are made.
    for (const [i, j] of topo.edges) {
      for (const [from, to] of [[i, j], [j, i]] as const) {
        const proxy = new TcpProxy(ports[to]);
        await proxy.start();
        proxies.set(`${from}-${to}`, proxy);
      }
    }
    const links = [...proxies].map(([key, proxy]) => {
      const [from, to] = key.split('-').map(Number) as [number, number];
      return { from, url: proxy.url, peerId: ids[to] as string };
    });
    await Promise.all(shards.map((s, k) => s.request({ op: 'link', links: links.filter((l) => shardOf(l.from) === k) }, 'ok')));

    /** Bytes of every entry appended, per origin, by seq - 1 (as the shards report them). */
    const sizes: number[][] = Array.from({ length: n }, () => []);
    const takeSizes = (reply: { sizes: Record<number, number[]> }) => {
      for (const [index, list] of Object.entries(reply.sizes)) sizes[Number(index)] = list;
    };
    let polled: ShardPoll = { heads: {}, states: {}, counters: {} };
    const poll = async (states = false) => {
      const replies = await Promise.all(shards.map((s) => s.request({ op: 'poll', states }, 'poll')));
      polled = {
        heads: Object.assign({}, ...replies.map((r) => r.heads)) as ShardPoll['heads'],
        states: Object.assign({}, ...replies.map((r) => r.states)) as ShardPoll['states'],
        counters: replies.reduce((sum, r) => addCounters(sum, r.counters), {} as Record<string, number>),
      };
      return polled;
    };
    const head = (i: number, origin: number) => polled.heads[i]?.[ids[origin] as string] ?? 0;
    const holdsAll = (i: number, origins: readonly number[]) => origins.every((o) => head(i, o) >= (sizes[o] as number[]).length);
    const all = Array.from({ length: n }, (_, i) => i);
    const halves = [all.filter((i) => side(i) === 0), all.filter((i) => side(i) === 1)] as const;
    /** Stops the run's loops once close() has begun (a signal): nothing may go on into a dir being removed. */
    const live = () => {
      if (closed) throw new Error('interrupted');
    };
    const until = async (check: () => boolean, ms: number, states = false) => {
      const deadline = performance.now() + ms;
      for (;;) {
        live();
        await poll(states);
        if (check()) return true;
        if (performance.now() > deadline) return false;
        await sleep(POLL_MS);
      }
    };

    // Connected: every node's feed everywhere, and one shared state (the member records). One entry
    // each per round until then: a commit that races the first entry of a newly met origin can fail
    // (see SETUP_ROUND_MS), and only a later entry (a gap) or anti-entropy carries its entries.
    const setupDeadline = t0 + plan.setupTimeoutMs;
    const everywhere = () => all.every((i) => holdsAll(i, all)) && new Set(Object.values(polled.states)).size === 1;
    let setupRounds = 0;
    let connected = false;
    while (!connected && performance.now() < setupDeadline) {
      for (const reply of await Promise.all(shards.map((s) => s.request({ op: 'round', k: setupRounds }, 'sizes')))) takeSizes(reply);
      setupRounds += 1;
      connected = await until(everywhere, Math.min(SETUP_ROUND_MS, setupDeadline - performance.now()), true);
    }
    if (!connected) throw new Error(`the ${n} connected nodes did not converge within ${plan.setupTimeoutMs / 1000} s (heads ${JSON.stringify(all.map((i) => all.map((o) => head(i, o))))})`);
    const setupMs = performance.now() - t0;
    const setupErrors = polled.counters['mesh.errors'] ?? 0;
    progress(`catch-up, ${n} nodes: connected and converged after ${(setupMs / 1000).toFixed(1)} s (${setupRounds} round(s) of one entry each${setupErrors > 0 ? `; ${setupErrors} mesh step(s) failed meanwhile` : ''}); partition ${topo.split}|${n - topo.split} for ${plan.partitionMs / 1000} s at ${plan.ratePerNode} entries/s per node`);

    // Partition: cut every proxy across the split.
    const cross = [...proxies.entries()].filter(([key]) => {
      const [i, j] = key.split('-').map(Number) as [number, number];
      return side(i) !== side(j);
    });
    for (const [, proxy] of cross) proxy.cut();
    const headsAtCut = sizes.map((list) => list.length);

    // Every node writes at the rate, staggered (one append every 1/(rate*n) s, round robin), for the
    // partition's length. A node whose previous append has not finished skips its turn: if the machine
    // cannot keep up, fewer entries are written (reported), and no backlog outlives the partition.
    const planned = Math.round((plan.ratePerNode * plan.partitionMs) / 1000) * n;
    const partitionCounters0 = polled.counters;
    const partitionCpu0 = process.cpuUsage();
    const w0 = performance.now();
    const startAt = Date.now() + 50;
    let skipped = 0;
    for (const reply of await Promise.all(shards.map((s) => s.request({ op: 'write', startAt, ms: plan.partitionMs, gapMs: 1000 / (plan.ratePerNode * n), total: n }, 'sizes')))) {
      takeSizes(reply);
      skipped += reply.skipped;
    }
    live();
    const elapsedMs = performance.now() - w0;
    const written = sizes.flatMap((list, o) => list.slice(headsAtCut[o]));
    const entryBytes = summarize(written) ?? { min: Number.NaN, median: Number.NaN, max: Number.NaN };
    const writing = {
      plannedPerNode: planned / n, written: written.length, skipped, entryBytes: { min: entryBytes.min, median: entryBytes.median, max: entryBytes.max }, elapsedMs,
      achievedPerNodePerS: (written.length * 1000) / n / plan.partitionMs,
    };
    progress(`catch-up, ${n} nodes: wrote ${written.length} of ${planned} entries (${entryBytes.median} B median) in ${(elapsedMs / 1000).toFixed(1)} s (${writing.achievedPerNodePerS.toFixed(1)}/s per node${skipped > 0 ? `; ${skipped} turns skipped, the node's previous append still running` : ''})`);

    // Each half settles on what it wrote (live gossip inside it); the other half's entries stay missing.
    const h0 = performance.now();
    const halvesConverged = await until(() => halves.every((half) => half.every((i) => holdsAll(i, half))), plan.halvesTimeoutMs);
    const halvesMs = performance.now() - h0;
    if (!halvesConverged) progress(`catch-up, ${n} nodes: the halves did not settle within ${plan.halvesTimeoutMs / 1000} s; what they lack counts as missing`);
    const partitionCpu = process.cpuUsage(partitionCpu0);
    const partition = { counters: delta(polled.counters, partitionCounters0), cpuMs: (partitionCpu.user + partitionCpu.system) / 1000, ms: performance.now() - w0 };

    // What each node lacks at the heal, in entries and encoded bytes.
    const perNodeEntries: number[] = [];
    let missingBytes = 0;
    let crossEntries = 0;
    for (const i of all) {
      let lack = 0;
      for (const o of all) {
        const have = head(i, o);
        const origin = sizes[o] as number[];
        for (let s = have; s < origin.length; s++) missingBytes += origin[s] as number;
        lack += Math.max(0, origin.length - have);
        if (side(o) !== side(i)) crossEntries += Math.max(0, origin.length - have);
      }
      perNodeEntries.push(lack);
    }
    const missing = { entries: perNodeEntries.reduce((a, b) => a + b, 0), bytes: missingBytes, perNodeEntries, crossEntries };
    // Nothing written during the partition may have crossed it.
    const leaked = all.flatMap((i) => all.filter((o) => side(o) !== side(i) && head(i, o) > (headsAtCut[o] as number)).map((o) => `${i}<-${o}`));
    if (leaked.length > 0) throw new Error(`the partition leaked: entries written during it crossed it (${leaked.slice(0, 8).join(', ')})`);
    progress(`catch-up, ${n} nodes: at the heal the nodes lack ${missing.entries} entries, ${(missing.bytes / KiB).toFixed(0)} KiB`);

    // Heal, and measure from here.
    const countersBefore = polled.counters;
    const wireBefore = new Map([...proxies].map(([key, p]) => [key, p.bytes.up + p.bytes.down]));
    const healMB = await rssMB();
    const cpu0 = process.cpuUsage();
    const healAt = performance.now();
    for (const [, proxy] of cross) proxy.heal();
    const perNodeAt: (number | null)[] = all.map(() => null);
    const reconnectAt = new Map<string, number>();
    let convergedAt: number | undefined;
    const deadline = healAt + plan.convergeTimeoutMs;
    for (;;) {
      await poll();
      const now = performance.now();
      for (const i of all) if (perNodeAt[i] === null && holdsAll(i, all)) perNodeAt[i] = now - healAt;
      for (const [key, proxy] of cross) if (!reconnectAt.has(key) && proxy.bytes.up + proxy.bytes.down > (wireBefore.get(key) ?? 0)) reconnectAt.set(key, now - healAt);
      if (convergedAt === undefined && perNodeAt.every((t) => t !== null)) {
        convergedAt = now;
        progress(`catch-up, ${n} nodes: converged ${((now - healAt) / 1000).toFixed(1)} s after the heal`);
      }
      // Done once converged and every cross link is back (its hello counts too), then a short settle.
      if (convergedAt !== undefined && reconnectAt.size === cross.length) break;
      if (now > deadline) break;
      await sleep(POLL_MS);
      live();
    }
    const waitedMs = performance.now() - healAt;
    if (convergedAt !== undefined) await sleep(plan.settleMs);
    const cpu = process.cpuUsage(cpu0);
    const counters = delta((await poll()).counters, countersBefore);
    let wireBytes = 0;
    let wireBytesCross = 0;
    for (const [key, p] of proxies) {
      const d = p.bytes.up + p.bytes.down - (wireBefore.get(key) ?? 0);
      wireBytes += d;
      if (cross.some(([k]) => k === key)) wireBytesCross += d;
    }
    const reconnectMs = cross.map(([key]) => reconnectAt.get(key) ?? null);
    const pairs = topo.edges.filter(([i, j]) => side(i) !== side(j)).map(([i, j]) => {
      const a = reconnectAt.get(`${i}-${j}`);
      const b = reconnectAt.get(`${j}-${i}`);
      return a === undefined || b === undefined ? Number.POSITIVE_INFINITY : Math.max(a, b);
    });
    const mem = await memory(process.pid);
    run = {
      ...base,
      ok: convergedAt !== undefined,
      ...(convergedAt === undefined ? { failure: `not converged ${plan.convergeTimeoutMs / 1000} s after the heal: ${perNodeAt.filter((t) => t === null).length} of ${n} nodes still lack entries` } : {}),
      setupMs,
      setupRounds,
      setupErrors,
      writing,
      halvesConverged,
      halvesMs,
      partition,
      missing,
      ...(convergedAt !== undefined ? { convergeMs: convergedAt - healAt } : {}),
      waitedMs,
      perNodeMs: perNodeAt,
      reconnectMs,
      firstPairMs: Math.min(...pairs),
      catchup: {
        payloadBytes: counters['mesh.catchup_bytes_sent'] ?? 0,
        entriesSent: counters['mesh.catchup_entries_sent'] ?? 0,
        wireBytes,
        wireBytesCross,
        duplicates: counters['feeds.duplicate'] ?? 0,
        wantsSent: counters['mesh.sent.want'] ?? 0,
        counters,
      },
      cpuMs: (cpu.user + cpu.system) / 1000,
      rss: { beforeMB, healMB, convergedMB: mem.rssKiB / KiB, peakMB: mem.hwmKiB / KiB },
    };
    const c = run.catchup;
    if (c) progress(`catch-up, ${n} nodes: payload ${(c.payloadBytes / KiB).toFixed(0)} KiB (${ratio(c.payloadBytes, missing.bytes).toFixed(2)}x missing), wire ${(c.wireBytes / KiB).toFixed(0)} KiB (${ratio(c.wireBytes, missing.bytes).toFixed(2)}x), ${c.duplicates} duplicate entries received, CPU ${((run.cpuMs ?? 0) / 1000).toFixed(1)} s`);
    if (!run.ok) progress(`catch-up, ${n} nodes: FAILED: ${run.failure ?? ''}`);
    return run;
  } catch (err) {
    const failure = closed ? 'interrupted' : err instanceof Error ? err.message : String(err);
    progress(`catch-up, ${n} nodes: FAILED: ${failure}`);
    return { ...run, ok: false, failure };
  } finally {
    await close();
  }
}

/** Longest a child may take: every phase's own limit, plus start-up and stopping. */
function childTimeoutMs(plan: CatchupPlan): number {
  return plan.setupTimeoutMs + plan.partitionMs * 2 + plan.halvesTimeoutMs + plan.convergeTimeoutMs + plan.settleMs + 2 * STOP_TIMEOUT_MS + 30_000;
}

/** Which catchup-child.js to run: ours, or a baseline checkout's (its label prefixes its progress lines). */
interface ChildMain {
  readonly main: string;
  readonly label?: string;
}

/** Runs one size in its own process, so its RSS and CPU are the mesh's alone; killed if it overruns. */
async function runChild(res: Resources, tmp: string, n: number, plan: CatchupPlan, progress: Progress, which: ChildMain = { main: CHILD_MAIN }, tag = ''): Promise<CatchupRun> {
  const out = path.join(tmp, `catchup-${n}${tag}.json`);
  // stdin is a pipe the child watches: if this process dies, the child stops its nodes and exits.
  const child = spawn(process.execPath, [which.main, String(n), JSON.stringify(plan), tmp, out], { stdio: ['pipe', 'ignore', which.label ? 'pipe' : 'inherit'] });
  if (which.label && child.stderr) {
    const prefix = `[${which.label}] `;
    createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`${line.replace(/^bench: /, `bench: ${prefix}`)}\n`));
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // the child stops its nodes and removes its data dir
    await withTimeout(exited, STOP_TIMEOUT_MS * 2, `catch-up child pid ${child.pid ?? '?'} to exit`).catch(() => child.kill('SIGKILL'));
  };
  res.add(kill);
  const limit = childTimeoutMs(plan);
  let failure: string | undefined;
  try {
    const exit = await withTimeout(exited, limit, `the ${n}-node catch-up run`);
    if (exit.code !== 0) failure = `the ${n}-node run exited with ${exit.signal ?? `code ${String(exit.code)}`}`;
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    await kill();
  }
  if (failure) progress(`catch-up, ${n} nodes: ${failure}`);
  try {
    return JSON.parse(await readFile(out, 'utf8')) as CatchupRun;
  } catch {
    const topo = topology(n);
    return { nodes: n, topology: { ...topo, edges: topo.edges.map(([i, j]) => `${i}-${j}`) }, ok: false, failure: failure ?? `the ${n}-node run wrote no result` };
  }
}

/**
 * Every size, `plan.repeats` times. With a baseline checkout, each repeat of
 * a size runs ours and its catchup-child.js one after the other, the order
 * swapped every other time, so the machine's drift touches both alike.
 */
export async function measureCatchup(res: Resources, tmp: string, plan: CatchupPlan, progress: Progress, baseline?: Baseline): Promise<CatchupResults> {
  const repeats = plan.repeats ?? 1;
  progress(`catch-up: ${plan.sizes.join(', ')} nodes${plan.simulatedSizes?.length ? ` (then ${plan.simulatedSizes.join(', ')} simulated)` : ''}${repeats > 1 ? `, ${repeats} runs each` : ''}${baseline ? `, ours and ${baseline.label}'s taking turns` : ''}, each run in a fresh process; ${plan.partitionMs / 1000} s partition at ${plan.ratePerNode} entries/s per node; mesh ${JSON.stringify(MESH_SETTINGS)}`);
  const runs: CatchupRunOf[] = [];
  const before: CatchupRunOf[] = [];
  let interrupted = false;
  res.add(() => { interrupted = true; }); // closeAll (Ctrl-C) ran: start no further size
  let turn = 0;
  for (const n of plan.sizes) {
    for (let repeat = 0; repeat < repeats; repeat++) {
      const ours = async () => { runs.push({ ...(await runChild(res, tmp, n, plan, progress, baseline ? { main: CHILD_MAIN, label: 'now' } : undefined, repeats > 1 ? `-${repeat}` : '')), repeat }); };
      const theirs = baseline ? async () => { before.push({ ...(await runChild(res, tmp, n, plan, progress, { main: baseline.catchupChild, label: baseline.label }, `-before-${repeat}`)), repeat }); } : undefined;
      for (const step of theirs && turn % 2 === 1 ? [theirs, ours] : [ours, ...(theirs ? [theirs] : [])]) {
        if (interrupted) break;
        await step();
      }
      turn += 1;
    }
  }
  const notes: string[] = [];
  const simulated: ScenarioResult[] = [];
  for (const n of interrupted ? [] : plan.simulatedSizes ?? []) {
    // No loss: the real runs' links are loopback TCP.
    simulated.push(...await measureSim({ sizes: [n], partitionMs: plan.partitionMs, loss: 0 }, progress).catch((err: unknown) => {
      notes.push(`catch-up, ${n} nodes (simulated): ${err instanceof Error ? err.message : String(err)}`);
      return [];
    }));
  }
  for (const [who, list] of [['', runs], [baseline ? ` (${baseline.label})` : '', before]] as const) {
    for (const r of list) {
      const at = `catch-up, ${r.nodes} nodes${who}`;
      if (!r.ok) notes.push(`${at}: ${r.failure ?? 'failed'}`);
      if (r.halvesConverged === false) notes.push(`${at}: the halves had not settled at the heal; their own stragglers count as missing too`);
      if (r.writing && r.writing.achievedPerNodePerS < plan.ratePerNode * 0.95) notes.push(`${at}: writes fell behind (${r.writing.achievedPerNodePerS.toFixed(1)}/s per node, planned ${plan.ratePerNode})`);
      if ((r.setupErrors ?? 0) > 0) notes.push(`${at}: ${r.setupErrors ?? 0} mesh step(s) failed while the nodes first met (FeedStore.flush on a log still opening), so setup took ${r.setupRounds ?? '?'} rounds`);
    }
  }
  return { plan, mesh: MESH_SETTINGS, runs, ...(baseline ? { baseline: { label: baseline.label, runs: before } } : {}), simulated, notes };
}
