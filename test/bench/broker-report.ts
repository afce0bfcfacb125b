/**
 * The broker benchmark's report (broker.ts measures): the comparison rows,
 * kept in bench-results.json, and their text tables. With a baseline
 * checkout (--baseline), a "before" column and now/before ratios: per
 * repeat (the two took turns), as median (min–max), where a metric has one
 * value per repeat.
 */
import { OUTGOING_DEFAULTS } from '../../runtime/broker/embedded-broker.js';
import { BASELINE, PUBLISH_WINDOW, QOS, RUN_TIMEOUT_MS, TARGETS, type BrokerResults, type BrokerSide, type StallResult } from './broker.js';
import { PAYLOAD_BYTES } from './mqtt-load.js';
import { summarize, type Summary } from './stats.js';
import { columns, formatNumber } from './table.js';

const mark = (ok: boolean | undefined) => (ok === undefined ? '' : ok ? '✓' : '✗');

function cell(s: Summary | undefined): string {
  if (!s) return '—';
  return s.n > 1 ? `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})` : formatNumber(s.median);
}

const count = (s: Summary | undefined) => (s ? String(Math.round(s.median)) : '—');

interface CompareRow {
  readonly metric: string;
  readonly unit: string;
  readonly embedded: Summary | undefined;
  readonly mosquitto: Summary | undefined;
  /** With --baseline: the baseline checkout's embedded broker, and ours over it. */
  readonly baseline?: Summary;
  readonly nowBefore?: Summary;
  readonly target?: { readonly text: string; readonly met: (r: number) => boolean };
  /** Counts: shown as integers, no ratio. */
  readonly count?: boolean;
}

/** now / before: per repeat when both have one value per repeat (they took turns), else of the values. */
function paired(now: readonly number[] | undefined, before: readonly number[] | undefined): Summary | undefined {
  if (!now || !before || now.length === 0 || before.length === 0) return undefined;
  if (now.length === before.length) return summarize(now.map((v, i) => v / (before[i] as number)));
  const [a, b] = [summarize(now), summarize(before)];
  return a && b ? summarize([a.median / b.median]) : undefined;
}

/** The comparison rows, also kept in bench-results.json. */
export function brokerRows(results: BrokerResults): (CompareRow & { ratio: number | undefined; met: boolean | undefined })[] {
  const side = (name: string) => results.sides.find((s) => s.name === name);
  const [e, b, m] = [side('embedded'), side(BASELINE), side('mosquitto')];
  const rows: CompareRow[] = [];
  /** A row from each side's values (one per repeat, or one). */
  const add = (metric: string, unit: string, values: (s: BrokerSide) => number[], more: Partial<CompareRow> = {}) => {
    const of = (s: BrokerSide | undefined) => (s ? summarize(values(s)) : undefined);
    const before = b ? { baseline: of(b), ...(more.count ? {} : { nowBefore: paired(e && values(e), values(b)) }) } : {};
    rows.push({ metric, unit, embedded: of(e), mosquitto: of(m), ...before, ...more });
  };
  for (const qos of QOS) add(`throughput, QoS ${qos}`, 'msg/s', (s) => s.throughput[qos].map((r) => r.msgsPerSecond), { target: { text: `≥ ${TARGETS.throughput}x`, met: (r) => r >= TARGETS.throughput } });
  for (const qos of QOS) {
    add(`latency p50, QoS ${qos}`, 'µs', (s) => [s.latency[qos].p50], { target: { text: `≤ ${TARGETS.p50}x`, met: (r) => r <= TARGETS.p50 } });
    add(`latency p99, QoS ${qos}`, 'µs', (s) => [s.latency[qos].p99]);
    add(`latency round trips timed, QoS ${qos} (${RUN_TIMEOUT_MS / 1000} s cap)`, 'trips', (s) => [s.latency[qos].n], { count: true });
  }
  for (const qos of QOS) add(`messages lost, QoS ${qos} (all ${results.plan.repeats} runs)`, 'msgs', (s) => [s.throughput[qos].reduce((sum, r) => sum + r.published - r.delivered, 0)], { count: true });
  for (const qos of QOS) add(`broker CPU per message, QoS ${qos}`, 'µs', (s) => s.throughput[qos].map((r) => r.cpuUsPerMsg));
  for (const qos of QOS) add(`load generator CPU (pub + sub, one process), QoS ${qos}`, '% core', (s) => s.throughput[qos].map((r) => r.loadGenCpuPct));
  add('broker RSS, idle (2 clients)', 'MB', (s) => [s.rss.idleMB]);
  add('broker peak RSS (VmHWM)', 'MB', (s) => [s.rss.peakMB]);
  rows.push({ metric: 'for scale: idle `node -e` process RSS', unit: 'MB', embedded: summarize([results.idleNodeMB]), mosquitto: undefined });
  return rows.map((row) => {
    const r = !row.count && row.embedded && row.mosquitto && row.mosquitto.median !== 0 ? row.embedded.median / row.mosquitto.median : undefined;
    return { ...row, ratio: r, met: row.target && r !== undefined && Number.isFinite(r) ? row.target.met(r) : undefined };
  });
}

function silentLossCell(r: StallResult): string {
  if (r.silentLoss === 0) return '0 ✓';
  if (r.silentLoss > 0) return `${r.silentLoss} unaccounted ✗`;
  return `${r.silentLoss}: ${-r.silentLoss} counted as dropped yet read by the client (from its kernel buffer, after the cut)`;
}

export function renderBroker(results: BrokerResults): string {
  const { plan } = results;
  const out: string[] = [];
  out.push('');
  out.push(`[broker: embedded (aedes, own process) vs ${results.mosquitto ?? 'mosquitto'}; ${PAYLOAD_BYTES} B payloads, 1 publisher + 1 subscriber (MQTT.js, MQTT 3.1.1), loopback; median (min–max) of ${plan.repeats} x ${plan.messages} messages, latency over up to ${plan.roundTrips} one-in-flight round trips]`);
  if (!results.mosquitto) out.push('mosquitto comparison SKIPPED: no mosquitto executable found (install it: apt-get install -y mosquitto, or set APIARY_BENCH_MOSQUITTO to its path); embedded broker figures only');
  const rows = brokerRows(results);
  const value = (r: CompareRow, s: Summary | undefined) => (r.count ? count(s) : cell(s));
  const times = (s: Summary | undefined) => (!s ? '—' : s.n > 1 ? `${formatNumber(s.median)}x (${formatNumber(s.min)}–${formatNumber(s.max)})` : `${formatNumber(s.median)}x`);
  if (results.baseline) {
    out.push(`[with --baseline: "before" is the embedded broker of ${results.baseline} (its own broker-server.js, in its own process), taking turns with ours run by run (order swapped every other repeat); now/before per repeat, median (min–max); ratio is now vs mosquitto, as without a baseline]`);
    out.push(...columns(
      ['metric', 'unit', 'embedded (now)', `before (${results.baseline})`, 'now/before', 'mosquitto', 'ratio', 'target', ''],
      rows.map((r) => [r.metric, r.unit, value(r, r.embedded), value(r, r.baseline), times(r.nowBefore), value(r, r.mosquitto), r.ratio === undefined ? '—' : `${formatNumber(r.ratio)}x`, r.target?.text ?? '—', mark(r.met)]),
      new Set([2, 3, 4, 5, 6]),
    ));
  } else {
    out.push(...columns(
      ['metric', 'unit', 'embedded', 'mosquitto', 'ratio', 'target', ''],
      rows.map((r) => [r.metric, r.unit, value(r, r.embedded), value(r, r.mosquitto), r.ratio === undefined ? '—' : `${formatNumber(r.ratio)}x`, r.target?.text ?? '—', mark(r.met)]),
      new Set([2, 3, 4]),
    ));
  }
  out.push('');
  out.push(`[stalled QoS 1 subscriber: stops reading its socket for ${plan.stallMs / 1000} s while ${plan.stallMessages} messages of ${plan.stallPayloadBytes} B are published (window ${PUBLISH_WINDOW}); a healthy QoS 1 subscriber on the same topic; fresh broker each; embedded with its defaults: at most ${OUTGOING_DEFAULTS.maxQueuedMessages} messages / ${OUTGOING_DEFAULTS.maxQueuedBytes / 2 ** 20} MiB waiting per client, cut after ${OUTGOING_DEFAULTS.stallTimeoutMs / 1000} s without reading]`);
  const s = results.stall;
  const col = (f: (r: StallResult) => string) => s.map(f);
  const lines: string[][] = [
    ['published (PUBACKed by the broker)', ...col((r) => `${r.published} of ${r.attempted}`)],
    ['delivered to the stalled subscriber (read after it resumed)', ...col((r) => String(r.deliveredStalled))],
    ['counted drops (broker-wide)', ...col((r) => `${r.drops} (${r.dropsByCounter ? Object.entries(r.dropsByCounter).map(([k, v]) => `${k} ${v}`).join(', ') || 'none' : r.dropsSource})`)],
    ['silent loss: 2 x published - delivered to both - drops', ...col((r) => `${silentLossCell(r)}${r.drainTimedOut ? ' (drain timed out)' : ''}`)],
    ['delivered to the healthy subscriber', ...col((r) => `${r.healthy} ${mark(r.healthy >= r.published)}`)],
    ['healthy subscriber held up (longest wait for a message during the stall)', ...col((r) => `${(r.atStallEnd.healthyLongestWaitMs / 1000).toFixed(1)} s ${mark(r.atStallEnd.healthyLongestWaitMs < 1000)}`)],
    ['during the stall: published, healthy got', ...col((r) => `${r.atStallEnd.published}, ${r.atStallEnd.healthy}${r.atStallEnd.stuck ? ' (stuck at the end of the stall)' : ''}`)],
    ['stalled subscriber disconnected by the broker (stall timeout)', ...col((r) => (r.stalledCut === undefined ? '—' : r.stalledCut ? 'yes (broker.disconnected.stalled)' : 'no'))],
    ['broker RSS: before → mid-stall → end of stall', ...col((r) => `${r.rss.baseMB.toFixed(1)} → ${r.rss.midStallMB.toFixed(1)} → ${r.rss.endStallMB.toFixed(1)} MB`)],
    ['broker RSS growth, peak', ...col((r) => `+${(r.rss.peakMB - r.rss.baseMB).toFixed(1)} MB${r.rss.endStallMB - r.rss.midStallMB > 1 ? ' (still growing at end of stall)' : ''}`)],
  ];
  const emb = s.find((r) => r.broker === 'embedded');
  if (emb?.heapAfterGcMB) {
    const h = emb.heapAfterGcMB;
    lines.push(['embedded: V8 heap after GC, before → end of stall → end', `${h.base.toFixed(1)} → ${h.endStall.toFixed(1)} → ${h.end.toFixed(1)} MB`]);
  }
  if (emb?.counters) {
    const { before, after } = emb.counters;
    const changed = Object.entries(after).filter(([k, v]) => v !== (before[k] ?? 0)).map(([k, v]) => `${k} +${v - (before[k] ?? 0)}`);
    lines.push(['embedded: counters changed', changed.length > 0 ? changed.join(', ') : 'none']);
  }
  if (emb) {
    const a = emb.atStallEnd;
    lines.push(['embedded at end of stall: clients, aedes queue, outbox, Node write buffers', `${a.brokerClients ?? '?'} connected, ${a.emitterQueue ?? '?'} publishes queued, ${a.outboxMessages ?? '?'} messages / ${a.outboxMB === undefined ? '?' : a.outboxMB.toFixed(2)} MB in outboxes, ${a.writeBufferedMB === undefined ? '?' : a.writeBufferedMB.toFixed(2)} MB`]);
  }
  const heading = (r: StallResult) => (r.broker === 'embedded' ? 'embedded' : r.broker === BASELINE ? `before (${results.baseline ?? BASELINE})` : 'mosquitto (reference, default limits)');
  out.push(...columns(['', ...s.map(heading)], lines, new Set()));
  for (const note of results.notes) out.push(`note: ${note}`);
  return out.join('\n');
}
