/** Renders a node's status answer for a terminal. */
import { formatBytes } from '../config/units.js';

interface StatusView {
  nodeId?: string;
  name?: string;
  app?: string;
  version?: string;
  device?: string;
  deviceState?: string;
  soundState?: string;
  speed?: number;
  uptimeS?: number;
  latest?: {
    readings?: Record<string, { value: number; unit: string; t: number }>;
    models?: Record<string, { label: string; probabilities: Record<string, number>; t: number }>;
    decisions?: Record<string, { state: string; message: string; reason: string; t: number }>;
  };
  activeDecisions?: string[];
  inference?: { backend: string; reason: string };
  models?: {
    dir: string;
    loaded: { name: string; version: string; sha256: string; signer: string }[];
    refused: { model: string; code: string; reason: string }[];
    updates: { name: string; version: string; status: string; reason?: string; release?: { origin: string; seq: number } }[];
  };
  storage?: { dataDir: string; bytes: number; streams: { name: string; bytes: number; nextSeq: number; droppedByRetention: number; droppedCorrupt: number }[] };
  counters?: Record<string, number>;
  countersSince?: string;
  deviceCounters?: Record<string, number>;
  broker?: { url: string; clients: number; connections?: number };
  extensions?: Record<string, { state: string; error?: string }>;
  flows?: { state: string; pid: number | null; restarts: number; crashes: number; url: string; lastError?: string };
  /** The node's own MCP endpoint (mcp.http), when on. */
  mcp?: { http?: { url?: string; auth?: string; tls?: boolean; revokedTokens?: number } };
  /** The payments extension (payments.enabled): totals per unit. */
  payments?: { channels: number; peers: number; owedToUs: Record<string, number>; weOwe: Record<string, number>; forkedPayers: number };
  mesh?: {
    owner: string;
    shared?: { sha256: string; bytes: number; stateVector: Record<string, number> };
    feeds: { origin: string; seq: number; firstSeq: number; bytes: number; droppedByRetention: number; sparse?: true; kept?: number }[];
    peers: { nodeId: string; name?: string; link: string; url?: string; lastError?: string; lastSeen: string | null; announced: string | null; weLack: Record<string, number>; theyLack: Record<string, number> }[];
    quarantined?: string[];
    budgets?: Record<string, { used: number; max: number }>;
    /** mesh.replicate (runtime/mesh/sparse-replication.ts). */
    replication?: { rules: unknown; kept: number; relayed: number; expired: number; relay: { bytes: number; maxBytes: number; entries: number; dropped: number } };
  };
}

export function formatStatus(raw: unknown): string {
  const s = raw as StatusView;
  const lines: string[] = [];
  const time = (t: number) => new Date(t).toISOString().replace('T', ' ').slice(0, 19);
  lines.push(`Node ${s.nodeId ?? '?'} "${s.name ?? ''}" (apiary ${s.version ?? '?'}), device ${s.device ?? '?'}${s.speed && s.speed !== 1 ? ` at ${s.speed}x` : ''}, up ${formatUptime(s.uptimeS ?? 0)}`);
  if (s.deviceState === 'disconnected') lines.push('Device DISCONNECTED: its board does not answer; nothing is measured until it is back (the node keeps reopening it)');
  if (s.soundState) lines.push(`Simulated colony sound: ${s.soundState}`);
  if (s.broker) lines.push(`Broker: ${s.broker.url}, ${s.broker.clients} client(s)${s.broker.connections === undefined ? '' : `, ${s.broker.connections} socket(s)`}`);
  if (s.extensions) {
    const entries = Object.entries(s.extensions);
    const failed = entries.filter(([, e]) => e.state === 'failed');
    lines.push(`Application ${s.app ?? '?'}, extensions: ${entries.map(([name, e]) => (e.state === 'running' ? name : `${name} (${e.state})`)).join(', ')}`);
    for (const [name, e] of failed) lines.push(`  ${name} failed: ${e.error ?? 'no reason given'}`);
  }
  if (s.flows) {
    const f = s.flows;
    lines.push(`Node-RED: ${f.state}${f.pid === null ? '' : ` (pid ${f.pid})`}, editor ${f.url}, ${f.restarts} restart(s), ${f.crashes} crash(es)${f.lastError ? `; ${f.lastError}` : ''}`);
  }
  const mcp = s.mcp?.http;
  if (mcp?.url) {
    lines.push(`MCP endpoint: ${mcp.url}, ${mcp.auth === 'owner-token' ? `owner tokens${mcp.tls ? ' over TLS' : ''} (${mcp.revokedTokens ?? 0} revoked; writes with a write token)` : 'no token: loopback, read-only'}`);
  }
  if (s.payments) {
    const p = s.payments;
    const per = (totals: Record<string, number>) => Object.entries(totals).map(([unit, n]) => `${n} ${unit}`).join(', ') || 'nothing';
    lines.push(`Payments: ${p.peers} peer(s); owed to us ${per(p.owedToUs)}; we owe ${per(p.weOwe)}${p.forkedPayers > 0 ? `; ${p.forkedPayers} FORKED payer(s) (apiary pay balance)` : ''}`);
  }
  const guarded = brokerGuardSummary(s.counters ?? {});
  if (guarded) lines.push(guarded);
  lines.push('', 'Last readings:');
  const readings = Object.entries(s.latest?.readings ?? {});
  const width = Math.max(14, ...readings.map(([channel]) => channel.length));
  for (const [channel, r] of readings) lines.push(`  ${channel.padEnd(width)} ${String(r.value).padStart(9)} ${r.unit.padEnd(5)} at ${time(r.t)}`);
  const outputs = Object.entries(s.latest?.models ?? {});
  if (outputs.length > 0 || (s.models?.loaded.length ?? 0) > 0) lines.push('', 'Last model outputs:');
  for (const [model, o] of outputs) {
    const probs = Object.entries(o.probabilities).map(([label, p]) => `${label} ${(p * 100).toFixed(1)}%`).join(', ');
    lines.push(`  ${model.padEnd(14)} ${o.label} (${probs}) at ${time(o.t)}`);
  }
  if (s.models && s.models.loaded.length === 0 && s.models.refused.length === 0 && s.models.updates.length === 0) {
    lines.push('', `Models: none (the ${s.app ?? 'node'} application runs no model)`);
  } else if (s.models) {
    lines.push('', `Models (from ${s.models.dir}), run by ${s.inference ? `${s.inference.backend}: ${s.inference.reason}` : 'no backend yet'}:`);
    for (const m of s.models.loaded) lines.push(`  ${m.name.padEnd(14)} ${m.version.padEnd(8)} sha256 ${m.sha256.slice(0, 12)}  ${m.signer === 'shipped' ? 'shipped' : `signed by ${m.signer.slice(0, 12)}…`}`);
    for (const r of s.models.refused) lines.push(`  ${r.model.padEnd(14)} refused: ${r.code} ${r.reason}`);
    for (const u of s.models.updates) lines.push(`  update ${u.name} ${u.version}${u.release ? ` from ${u.release.origin}#${u.release.seq}` : ''}: ${u.status}${u.reason ? ` (${u.reason})` : ''}`);
  }
  lines.push('', `Decisions (active: ${(s.activeDecisions ?? []).join(', ') || 'none'}):`);
  for (const [rule, d] of Object.entries(s.latest?.decisions ?? {})) lines.push(`  ${rule.padEnd(24)} ${d.state.padEnd(8)} ${d.message} - ${d.reason} at ${time(d.t)}`);
  if (s.storage) {
    lines.push('', `Storage: ${formatBytes(s.storage.bytes)} in ${s.storage.dataDir}`);
    for (const st of s.storage.streams) {
      const drops = st.droppedByRetention + st.droppedCorrupt;
      lines.push(`  ${st.name.padEnd(26)} ${String(st.nextSeq).padStart(8)} records ${formatBytes(st.bytes).padStart(10)}${drops ? `  dropped ${st.droppedByRetention} (retention) + ${st.droppedCorrupt} (corrupt)` : ''}`);
    }
  }
  if (s.mesh) {
    lines.push('', `Mesh (owner ${s.mesh.owner}):`);
    const shared = s.mesh.shared;
    if (shared) lines.push(`  shared document sha256 ${shared.sha256.slice(0, 16)} (${formatBytes(shared.bytes)}), state vector ${Object.entries(shared.stateVector).map(([c, n]) => `${c}:${n}`).join(' ') || 'empty'}`);
    for (const p of s.mesh.peers) {
      const lack = (v: Record<string, number>) => Object.values(v).reduce((a, b) => a + b, 0);
      lines.push(`  ${(p.name ?? p.nodeId).padEnd(16)} ${p.nodeId}  link ${p.link.padEnd(10)} announced ${(p.announced ?? '?').padEnd(7)} last seen ${p.lastSeen ?? 'never'}  we lack ${lack(p.weLack)}, they lack ${lack(p.theyLack)}${p.lastError ? `  (${p.lastError})` : ''}`);
    }
    const b = s.mesh.budgets;
    if (b) {
      const of = (name: string, bytes = false) => {
        const use = b[name];
        return use ? (bytes ? `${formatBytes(use.used)} of ${formatBytes(use.max)}` : `${use.used} of ${use.max}`) : '?';
      };
      const refused = Object.entries(s.counters ?? {}).filter(([k]) => /^(feeds\.refused\.|mesh\.rejected\.(state_|want_|have_))/.test(k)).reduce((n, [, v]) => n + v, 0);
      lines.push(`  budgets: other feeds ${of('feedBytes', true)}, busiest owner ${of('originsOfBusiestOwner')} origins, shared document ${of('sharedKeys')} keys and ${of('sharedBytes', true)}; ${refused} refused (counters below)`);
    }
    const r = s.mesh.replication;
    if (r && r.rules !== 'everything') {
      lines.push(`  replication: keeps ${JSON.stringify(r.rules)}; ${r.kept} entries kept, ${r.relayed} passed on only, ${r.expired} expired; relay cache ${formatBytes(r.relay.bytes)} of ${formatBytes(r.relay.maxBytes)} (${r.relay.entries} entries), ${r.relay.dropped} dropped`);
    }
    lines.push('  feeds held:');
    for (const f of s.mesh.feeds) lines.push(`    ${f.origin}  ${f.sparse ? `sparse: ${f.kept ?? 0} kept of seq ..${f.seq}` : `seq ${f.firstSeq}..${f.seq}`}  ${formatBytes(f.bytes).padStart(10)}${f.droppedByRetention ? `  dropped ${f.droppedByRetention} (retention)` : ''}`);
    if (s.mesh.quarantined?.length) lines.push(`  quarantined (proven to have signed two histories): ${s.mesh.quarantined.join(', ')}`);
  }
  const counters = { ...(s.counters ?? {}), ...Object.fromEntries(Object.entries(s.deviceCounters ?? {}).map(([k, v]) => [`device.${k}`, v])) };
  if (Object.keys(counters).length > 0) {
    lines.push('', `Counters${s.countersSince ? ` (since ${s.countersSince.replace('T', ' ').slice(0, 19)}, across restarts)` : ''}:`);
    for (const [name, value] of Object.entries(counters)) lines.push(`  ${name.padEnd(36)} ${value}`);
  }
  return lines.join('\n');
}

/**
 * The broker's refusals in one line, by kind (details in the counters below):
 * connections refused before authentication, publishes and subscriptions
 * refused, messages withheld from local clients, announcements restored.
 */
function brokerGuardSummary(counters: Record<string, number>): string | undefined {
  const sum = (test: (name: string) => boolean) => Object.entries(counters).filter(([name]) => test(name)).reduce((total, [, n]) => total + n, 0);
  const rejected = (suffixes: string[]) => sum((name) => suffixes.some((suffix) => name === `broker.rejected.${suffix}`));
  const parts = [
    ['refused connections', rejected(['connections-total', 'connections-per-address', 'connect-oversized', 'connect-timeout', 'identifier', 'bad-credentials', 'not-authorized'])],
    ['refused publishes', rejected(['publish'])],
    ['refused subscriptions', rejected(['subscribe'])],
    ['over budget', rejected(['inflight-qos2', 'retained-client', 'retained-total'])],
    ['withheld', sum((name) => name.startsWith('broker.withheld.'))],
    ['announcements restored', counters['broker.restored.announcements'] ?? 0],
  ] as const;
  const shown = parts.filter(([, n]) => n > 0);
  return shown.length === 0 ? undefined : `Broker guard: ${shown.map(([what, n]) => `${what} ${n}`).join(', ')}`;
}

function formatUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${seconds % 60} s` : `${seconds} s`;
}
