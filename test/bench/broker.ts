/**
 * Broker benchmark: the embedded broker (aedes, in its own process) against
 * mosquitto on the same machine in the same run, with one MQTT.js publisher
 * and one subscriber (64-byte payloads, QoS 0 and 1); then a QoS 1
 * subscriber that stops reading its socket while a publisher keeps going.
 * Reports numbers and ✓/✗ against the targets; asserts nothing.
 */
import type { MqttClient } from 'mqtt';
import type { Baseline } from './baseline.js';
import { EmbeddedProcess, findMosquitto, idleNodeRss, MosquittoProcess, type BrokerProcess } from './brokers.js';
import { connectClient, latency, publishMany, quantile, RawSubscriber, Sink, subscribe, throughput, type QoS, type ThroughputRun } from './mqtt-load.js';
import { sleep, type Resources } from './processes.js';
import { ratio } from './stats.js';

export interface BrokerPlan {
  /** Messages per throughput run, and runs per broker and QoS. */
  readonly messages: number;
  readonly repeats: number;
  /** One-in-flight round trips per broker and QoS (after a short warm-up). */
  readonly roundTrips: number;
  /**
   * Messages published while one subscriber is stalled, their size, how long
   * it stays stalled, and how long the rest may take. The bytes must exceed
   * what the kernel buffers for the stalled socket (up to tcp_wmem's max,
   * 4 MiB, plus its receive buffer) or the broker never sees the stall.
   */
  readonly stallMessages: number;
  readonly stallPayloadBytes: number;
  readonly stallMs: number;
  readonly drainMs: number;
}

/** APIARY_BENCH_STALL_MS overrides the stall length, e.g. 65000 to outlast aedes's 60 s drainTimeout. */
const stallOverride = Number(process.env.APIARY_BENCH_STALL_MS) || undefined;
export const BROKER_FULL: BrokerPlan = { messages: 20_000, repeats: 5, roundTrips: 2000, stallMessages: 30_000, stallPayloadBytes: 1024, stallMs: stallOverride ?? 6000, drainMs: 20_000 };
export const BROKER_QUICK: BrokerPlan = { messages: 5000, repeats: 3, roundTrips: 500, stallMessages: 15_000, stallPayloadBytes: 1024, stallMs: stallOverride ?? 3000, drainMs: 10_000 };

/** Unacknowledged QoS 1 publishes (or unwritten QoS 0 ones) the publisher allows itself. */
export const PUBLISH_WINDOW = 100;
export const RUN_TIMEOUT_MS = 30_000;
const WARMUP_ROUND_TRIPS = 200;
const KiB_PER_MB = 1024;
export const QOS: readonly QoS[] = [0, 1];
export const TARGETS = { throughput: 0.6, p50: 1.5 } as const;

export interface Run extends ThroughputRun {
  /** Broker CPU (all threads) per delivered message, µs. */
  readonly cpuUsPerMsg: number;
}

export interface BrokerSide {
  readonly name: string;
  readonly version: string;
  readonly throughput: Record<QoS, Run[]>;
  readonly latency: Record<QoS, { readonly p50: number; readonly p99: number; readonly n: number; readonly lost: number }>;
  readonly rss: { readonly idleMB: number; readonly endMB: number; readonly peakMB: number };
}

export interface StallResult {
  readonly broker: string;
  readonly attempted: number;
  /** PUBACKed by the broker. */
  readonly published: number;
  readonly deliveredStalled: number;
  /** Counted drops, over all clients (the counters are broker-wide). */
  readonly drops: number;
  readonly dropsSource: string;
  /** Embedded only: the drops by counter (broker.dropped.queue_full, .stalled, .closed). */
  readonly dropsByCounter?: Record<string, number>;
  /**
   * Owed deliveries (2 subscribers x published) minus delivered to both minus
   * counted drops. When the healthy subscriber got everything, this is the
   * stalled one's: published minus delivered to it minus drops. Negative:
   * counted as dropped, yet read by the client (from its own kernel buffer,
   * after the broker cut the connection).
   */
  readonly silentLoss: number;
  /** Embedded only: the broker disconnected the stalled subscriber (broker.disconnected.stalled). */
  readonly stalledCut?: boolean;
  /** The drain phase ran out of time before the counts settled. */
  readonly drainTimedOut: boolean;
  readonly atStallEnd: {
    readonly published: number;
    readonly healthy: number;
    /** Publisher and healthy subscriber made no progress in the last second of the stall, with messages left to send. */
    readonly stuck: boolean;
    /** Longest time the healthy subscriber received nothing while messages were still to come, ms. */
    readonly healthyLongestWaitMs: number;
    readonly emitterQueue?: number;
    readonly writeBufferedMB?: number;
    /** Embedded only: PUBLISH packets and MB waiting in the broker's outboxes (bounded by maxQueuedMessages / maxQueuedBytes). */
    readonly outboxMessages?: number;
    readonly outboxMB?: number;
    /** Clients the embedded broker counts as connected (3 = publisher and both subscribers). */
    readonly brokerClients?: number;
  };
  readonly healthy: number;
  readonly rss: { readonly baseMB: number; readonly midStallMB: number; readonly endStallMB: number; readonly peakMB: number; readonly endMB: number };
  /** Embedded only: V8 heap in use after a full GC, before the stall, at its end, and after the drain. */
  readonly heapAfterGcMB?: { readonly base: number; readonly endStall: number; readonly end: number };
  readonly counters?: { readonly before: Record<string, number>; readonly after: Record<string, number> };
}

export interface BrokerResults {
  readonly plan: BrokerPlan;
  readonly mosquitto: string | undefined;
  /** With --baseline: that checkout's label (its side and stall result are named 'baseline'). */
  readonly baseline?: string;
  /** RSS of an idle `node -e` process, for scale. */
  readonly idleNodeMB: number;
  readonly sides: BrokerSide[];
  readonly stall: StallResult[];
  readonly notes: string[];
}

type Progress = (line: string) => void;

const MB = (kib: number) => kib / KiB_PER_MB;

/** A publisher, a subscriber on bench/0/# (QoS 0) and bench/1/# (QoS 1), and its sink. */
interface Pair {
  readonly pub: MqttClient;
  readonly sub: MqttClient;
  readonly sink: Sink;
}

async function openPair(res: Resources, broker: BrokerProcess): Promise<Pair> {
  const pub = await connectClient(broker.port, `bench-pub-${broker.name}`);
  res.add(() => pub.endAsync(true));
  const sub = await connectClient(broker.port, `bench-sub-${broker.name}`);
  res.add(() => sub.endAsync(true));
  const sink = new Sink(sub);
  for (const qos of QOS) await subscribe(sub, `bench/${qos}/#`, qos);
  return { pub, sub, sink };
}

/** Throws when the broker process has died: its figures would be meaningless. */
function alive(broker: BrokerProcess): void {
  if (!broker.running) throw new Error(`the ${broker.name} broker (pid ${broker.pid}) exited during the benchmark; its last output:\n${broker.output}`);
}

async function measuredRun(broker: BrokerProcess, pair: Pair, topic: string, qos: QoS, n: number): Promise<Run> {
  alive(broker);
  const cpu0 = await broker.cpuNs();
  const run = await throughput(pair.pub, pair.sink, topic, qos, n, PUBLISH_WINDOW, RUN_TIMEOUT_MS);
  alive(broker);
  const cpu1 = await broker.cpuNs();
  return { ...run, cpuUsPerMsg: ratio((cpu1 - cpu0) / 1000, run.delivered) };
}

async function compare(res: Resources, plan: BrokerPlan, brokers: readonly BrokerProcess[], versions: readonly string[], progress: Progress, notes: string[]): Promise<BrokerSide[]> {
  const pairs: Pair[] = [];
  const idle: number[] = [];
  for (const broker of brokers) {
    pairs.push(await openPair(res, broker));
    idle.push(MB((await broker.memory()).rssKiB));
  }
  const runs = brokers.map(() => ({ 0: [] as Run[], 1: [] as Run[] }));
  // Warm-up (JIT, socket buffers), not recorded.
  for (const qos of QOS) for (const [i, broker] of brokers.entries()) await throughput(pairs[i]!.pub, pairs[i]!.sink, `bench/${qos}/warmup-${broker.name}`, qos, Math.min(2000, plan.messages), PUBLISH_WINDOW, RUN_TIMEOUT_MS);
  // The brokers take turns, so both see the same machine load; with a baseline (the second broker),
  // ours and it swap places every other repeat, so neither always runs right after the other.
  const swapped = brokers[1]?.name === BASELINE;
  for (let r = 0; r < plan.repeats; r += 1) {
    const turns = [...brokers.entries()];
    if (swapped && r % 2 === 1) turns.splice(0, 2, turns[1]!, turns[0]!);
    for (const qos of QOS) {
      for (const [i, broker] of turns) {
        const run = await measuredRun(broker, pairs[i]!, `bench/${qos}/run-${r}`, qos, plan.messages);
        runs[i]![qos].push(run);
        progress(`broker ${broker.name} QoS ${qos} run ${r + 1}/${plan.repeats}: ${run.delivered}/${plan.messages} delivered, ${run.msgsPerSecond.toFixed(0)} msg/s, ${run.cpuUsPerMsg.toFixed(1)} µs broker CPU/msg`);
        if (run.delivered < plan.messages) notes.push(`${broker.name} QoS ${qos} run ${r + 1}: only ${run.delivered} of ${plan.messages} messages delivered (${run.published} accepted)`);
      }
    }
  }
  const lat = brokers.map(() => ({}) as BrokerSide['latency']);
  for (const qos of QOS) {
    for (const [i, broker] of brokers.entries()) {
      const { pub, sink } = pairs[i]!;
      await latency(pub, sink, `bench/${qos}/lat-warmup`, qos, WARMUP_ROUND_TRIPS, RUN_TIMEOUT_MS);
      const { us, lost } = await latency(pub, sink, `bench/${qos}/lat`, qos, plan.roundTrips, RUN_TIMEOUT_MS);
      alive(broker);
      lat[i]![qos] = { p50: quantile(us, 0.5), p99: quantile(us, 0.99), n: us.length, lost };
      progress(`broker ${broker.name} QoS ${qos} latency: p50 ${quantile(us, 0.5).toFixed(0)} µs, p99 ${quantile(us, 0.99).toFixed(0)} µs over ${us.length} round trips${lost ? `, ${lost} lost` : ''}`);
      if (lost > 0) notes.push(`${broker.name} QoS ${qos}: ${lost} latency probes never arrived`);
    }
  }
  const sides: BrokerSide[] = [];
  for (const [i, broker] of brokers.entries()) {
    const mem = await broker.memory();
    sides.push({ name: broker.name, version: versions[i] ?? broker.name, throughput: runs[i]!, latency: lat[i]!, rss: { idleMB: idle[i]!, endMB: MB(mem.rssKiB), peakMB: MB(mem.hwmKiB) } });
  }
  for (const { pub, sub } of pairs) await Promise.all([pub.endAsync(true), sub.endAsync(true)]);
  return sides;
}

/** Sum of the counters whose name says they count drops (none exist unless the broker counts them). */
function dropCount(counters: Record<string, number>): number {
  return Object.entries(counters).filter(([name]) => /drop/i.test(name)).reduce((sum, [, v]) => sum + v, 0);
}

/** The counters matching `pattern` that changed, by how much. */
function countersDelta(before: Record<string, number>, after: Record<string, number>, pattern: RegExp): Record<string, number> {
  return Object.fromEntries(Object.entries(after).filter(([name, v]) => pattern.test(name) && v !== (before[name] ?? 0)).map(([name, v]) => [name, v - (before[name] ?? 0)]));
}

/** mosquitto's own drop count, $SYS/broker/publish/messages/dropped (needs sys_interval). */
async function mosquittoDropWatcher(res: Resources, port: number): Promise<{ value: () => number; close: () => Promise<void> }> {
  const client = await connectClient(port, 'bench-sys');
  res.add(() => client.endAsync(true));
  let dropped = 0;
  client.on('message', (_topic, payload) => { dropped = Number(payload.toString('utf8')) || 0; });
  await client.subscribeAsync('$SYS/broker/publish/messages/dropped', { qos: 0 });
  return { value: () => dropped, close: () => client.endAsync(true) };
}

/** One stalled and one healthy QoS 1 subscriber, one publisher, a fresh broker. */
async function stall(res: Resources, plan: BrokerPlan, broker: BrokerProcess, progress: Progress): Promise<StallResult> {
  const topic = 'bench/stall';
  const embedded = broker instanceof EmbeddedProcess ? broker : undefined;
  const sys = embedded ? undefined : await mosquittoDropWatcher(res, broker.port);
  const healthyClient = await connectClient(broker.port, 'bench-healthy');
  res.add(() => healthyClient.endAsync(true));
  const healthy = new Sink(healthyClient);
  healthy.expect(topic);
  await subscribe(healthyClient, topic, 1);
  const stalled = await RawSubscriber.connect(broker.port, 'bench-stalled', topic, 1);
  res.add(() => stalled.close());
  const pub = await connectClient(broker.port, 'bench-stall-pub');
  res.add(() => pub.endAsync(true));
  await sleep(sys ? 1500 : 200); // mosquitto's $SYS counter is published every second
  const dropsBefore = sys?.value() ?? 0;
  const countersBefore = embedded ? (await embedded.stats()).counters : {};
  const drops = async () => (embedded ? dropCount((await embedded.stats()).counters) - dropCount(countersBefore) : (sys?.value() ?? 0) - dropsBefore);
  const rss = async () => (broker.running ? MB((await broker.memory()).rssKiB) : Number.NaN);
  const heap = async () => (embedded ? (await embedded.stats({ gc: true })).heapUsedBytes / 2 ** 20 : Number.NaN);
  const baseHeap = await heap();
  const baseMB = await rss();
  let peakMB = baseMB;
  let sampling = true;
  const gap = { stalling: false, count: 0, since: 0, longest: 0 };
  const sampler = (async () => {
    while (sampling && broker.running) {
      peakMB = Math.max(peakMB, await rss());
      const now = performance.now();
      if (healthy.received !== gap.count || healthy.received >= plan.stallMessages || !gap.stalling) {
        gap.count = healthy.received;
        gap.since = now;
      } else gap.longest = Math.max(gap.longest, now - gap.since);
      await sleep(100);
    }
  })();

  try {
    stalled.pause();
    Object.assign(gap, { stalling: true, count: healthy.received, since: performance.now() });
    const t0 = performance.now();
    const deadline = t0 + plan.stallMs + plan.drainMs;
    const publishing = publishMany(pub, topic, 1, plan.stallMessages, PUBLISH_WINDOW, deadline, plan.stallPayloadBytes);
    await sleep(plan.stallMs / 2);
    const midStallMB = await rss();
    await sleep(t0 + plan.stallMs - 1000 - performance.now());
    const oneSecondBefore = { published: publishing.acked, healthy: healthy.received };
    await sleep(t0 + plan.stallMs - performance.now());
    const endStallMB = await rss();
    const inner = embedded ? await embedded.stats() : undefined;
    gap.stalling = false;
    const endStallHeap = await heap();
    const atStallEnd = {
      published: publishing.acked,
      healthy: healthy.received,
      // Nothing moved in the last second of the stall although messages were left to publish.
      stuck: publishing.sent < plan.stallMessages || publishing.acked < plan.stallMessages
        ? publishing.acked === oneSecondBefore.published && healthy.received === oneSecondBefore.healthy
        : false,
      ...(inner?.emitterQueue !== undefined ? { emitterQueue: inner.emitterQueue } : {}),
      ...(inner?.writeBufferedBytes !== undefined ? { writeBufferedMB: inner.writeBufferedBytes / 2 ** 20 } : {}),
      ...(inner ? { outboxMessages: inner.outgoing.queuedMessages, outboxMB: inner.outgoing.queuedBytes / 2 ** 20 } : {}),
      healthyLongestWaitMs: gap.longest,
      ...(inner ? { brokerClients: inner.clients } : {}),
    };
    progress(`stall ${broker.name}: after ${plan.stallMs} ms stalled, ${atStallEnd.published} of ${plan.stallMessages} published, healthy subscriber has ${atStallEnd.healthy}, RSS ${baseMB.toFixed(1)} -> ${endStallMB.toFixed(1)} MB`);

    stalled.resume();
    let dropped = await drops();
    let settled = false;
    let lastChange = performance.now();
    let last = '';
    while (performance.now() < deadline) {
      await sleep(100);
      dropped = await drops();
      const key = `${publishing.acked}/${healthy.received}/${stalled.delivered}/${dropped}`;
      if (key !== last) {
        last = key;
        lastChange = performance.now();
      }
      const publishDone = publishing.acked + publishing.errors >= plan.stallMessages;
      const accounted = stalled.delivered + healthy.received + dropped >= 2 * publishing.acked;
      // Settled: everything accounted for, or nothing moved for 2 s (a loss then stays visible).
      if ((publishDone && accounted) || performance.now() - lastChange > 2000) {
        if (sys && !accounted) {
          await sleep(1500); // let $SYS catch up before calling anything silent
          dropped = await drops();
        }
        settled = true;
        break;
      }
    }
    publishing.stop();
    await publishing.finished;
    alive(broker);
    const countersAfter = embedded ? (await embedded.stats()).counters : undefined;
    const result: StallResult = {
      broker: broker.name,
      attempted: plan.stallMessages,
      published: publishing.acked,
      deliveredStalled: stalled.delivered,
      drops: dropped,
      dropsSource: embedded ? 'broker counters named *drop*' : '$SYS/broker/publish/messages/dropped',
      silentLoss: 2 * publishing.acked - stalled.delivered - healthy.received - dropped,
      ...(countersAfter ? { dropsByCounter: countersDelta(countersBefore, countersAfter, /drop/i), stalledCut: (countersAfter['broker.disconnected.stalled'] ?? 0) > (countersBefore['broker.disconnected.stalled'] ?? 0) } : {}),
      drainTimedOut: !settled,
      atStallEnd,
      healthy: healthy.received,
      rss: { baseMB, midStallMB, endStallMB, peakMB, endMB: await rss() },
      ...(embedded ? { heapAfterGcMB: { base: baseHeap, endStall: endStallHeap, end: await heap() } } : {}),
      ...(countersAfter ? { counters: { before: countersBefore, after: countersAfter } } : {}),
    };
    progress(`stall ${broker.name}: published ${result.published}, stalled got ${result.deliveredStalled}, drops ${result.drops}, silent loss ${result.silentLoss}, healthy got ${result.healthy} and waited at most ${(atStallEnd.healthyLongestWaitMs / 1000).toFixed(1)} s`);
    return result;
  } finally {
    sampling = false;
    await sampler;
    stalled.close();
    await Promise.all([healthyClient.endAsync(true), pub.endAsync(true), sys?.close()]);
  }
}

/** The name of the baseline checkout's embedded broker, in client ids, sides and stall results. */
export const BASELINE = 'baseline';

/** `baseline`: another checkout's broker-server.js, measured beside ours (baseline.ts). */
export async function measureBrokers(res: Resources, tmp: string, plan: BrokerPlan, progress: Progress, baseline?: Baseline): Promise<BrokerResults> {
  const notes: string[] = [];
  const mosquittoBin = await findMosquitto();
  const mosquittoVersion = mosquittoBin ? await MosquittoProcess.version(mosquittoBin) : undefined;
  if (!mosquittoBin) progress('mosquitto not found, comparison skipped: measuring the embedded broker alone (install it: apt-get install -y mosquitto, or set APIARY_BENCH_MOSQUITTO)');
  progress(`broker: ${plan.repeats} x ${plan.messages} messages per broker and QoS, ${plan.roundTrips} round trips, then a ${plan.stallMs / 1000} s stall with ${plan.stallMessages} messages`);

  const brokers: BrokerProcess[] = [];
  const embedded = await EmbeddedProcess.start();
  res.add(() => embedded.stop());
  brokers.push(embedded);
  const versions = ['embedded (aedes)'];
  if (baseline) {
    const before = await EmbeddedProcess.start(baseline.brokerServer, BASELINE);
    res.add(() => before.stop());
    brokers.push(before);
    versions.push(`embedded (aedes) at ${baseline.label}`);
  }
  if (mosquittoBin) {
    const mosquitto = await MosquittoProcess.start(mosquittoBin, tmp);
    res.add(() => mosquitto.stop());
    brokers.push(mosquitto);
    versions.push(mosquittoVersion ?? 'mosquitto');
  }
  const sides = await compare(res, plan, brokers, versions, progress, notes);
  for (const broker of brokers) await broker.stop();

  // Fresh brokers for the stall, so RSS growth starts from a known base.
  const stallResults: StallResult[] = [];
  const freshEmbedded = await EmbeddedProcess.start();
  res.add(() => freshEmbedded.stop());
  stallResults.push(await stall(res, plan, freshEmbedded, progress));
  await freshEmbedded.stop();
  if (baseline) {
    const freshBefore = await EmbeddedProcess.start(baseline.brokerServer, BASELINE);
    res.add(() => freshBefore.stop());
    stallResults.push(await stall(res, plan, freshBefore, progress));
    await freshBefore.stop();
  }
  if (mosquittoBin) {
    const freshMosquitto = await MosquittoProcess.start(mosquittoBin, tmp, ['sys_interval 1']);
    res.add(() => freshMosquitto.stop());
    stallResults.push(await stall(res, plan, freshMosquitto, progress));
    await freshMosquitto.stop();
  }
  const idleNodeMB = MB((await idleNodeRss()).rssKiB);
  return { plan, mosquitto: mosquittoVersion, ...(baseline ? { baseline: baseline.label } : {}), idleNodeMB, sides, stall: stallResults, notes };
}
