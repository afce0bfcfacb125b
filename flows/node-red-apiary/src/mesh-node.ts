/**
 * `apiary-mesh`: entries other nodes of the mesh put in their signed feeds.
 * The node publishes no mesh entries on MQTT; what a client can reach is the
 * `decisions/audit` command, which reads the decisions of every feed the node
 * holds and re-checks each one. So this node reads it (every `interval`, and
 * on any input) and sends each decision entry it has not sent before, per
 * origin by sequence number. Readings and model outputs of neighbours are
 * not reachable over MQTT (README of this package, "apiary mesh").
 */
import { ErrorCodes } from '../../../runtime/errors.js';
import { ApiaryFlowError } from './connection.js';
import type { NodeAPI, NodeDef, RedNode } from './red.js';
import { seconds, setUp } from './command-nodes.js';
import { readRepeatedly } from './poll.js';
import { followConnection } from './status.js';

interface MeshDef extends NodeDef {
  server?: string;
  timeout?: string | number;
  interval?: string | number;
  /** Also this node's own decisions. */
  includeOwn?: boolean;
  /** Also the entries already held when the flow starts (else only those that arrive later). */
  history?: boolean;
  limit?: string | number;
}

interface AuditResult {
  origin: string;
  seq: number;
  rule?: string;
  state?: string;
  t?: number;
  model?: string;
  sha256?: string;
  verdict: string;
  detail?: string;
}

/** The audit verdicts that find nothing wrong: a re-run model agrees, or the rule watched a reading (nothing to re-run). */
const SOUND = new Set(['verified', 'no-inference']);

function auditResults(result: unknown): AuditResult[] {
  if (!Array.isArray(result)) throw new ApiaryFlowError(ErrorCodes.COMMAND_INVALID, 'decisions/audit: the reply is not a list of entries');
  return result.filter((r): r is AuditResult => typeof r === 'object' && r !== null
    && typeof (r as AuditResult).origin === 'string' && typeof (r as AuditResult).seq === 'number' && typeof (r as AuditResult).verdict === 'string');
}

export function registerMeshNode(RED: NodeAPI): void {
  RED.nodes.registerType('apiary-mesh', function ApiaryMesh(this: RedNode, def: MeshDef) {
    RED.nodes.createNode(this, def);
    meshNode(RED, this, def);
  });
}

function meshNode(RED: NodeAPI, node: RedNode, def: MeshDef): void {
  const parts = setUp(RED, node, def);
  if (!parts) return;
  const { connection, timeoutMs } = parts;
  let intervalMs: number;
  let limit: number;
  try {
    intervalMs = seconds('interval', def.interval, 30) * 1000;
    limit = Math.min(200, Math.max(1, Math.round(seconds('limit', def.limit, 50))));
  } catch (err) {
    node.error((err as Error).message);
    return;
  }
  const status = followConnection(node, connection);
  /** Highest sequence number sent, per origin. */
  const sent = new Map<string, number>();
  let first = def.history !== true;
  readRepeatedly(node, status, intervalMs, () => connection.request('decisions/audit', { limit }, timeoutMs), (result) => {
    const baseline = first;
    first = false;
    for (const entry of auditResults(result)) {
      if (entry.origin === connection.nodeId && def.includeOwn !== true) continue;
      if (entry.seq <= (sent.get(entry.origin) ?? 0)) continue;
      sent.set(entry.origin, entry.seq);
      if (baseline) continue;
      const verified = SOUND.has(entry.verdict);
      node.send({
        topic: `${entry.origin}/decision/${entry.rule ?? ''}`,
        payload: { origin: entry.origin, seq: entry.seq, type: 'decision', verified, rule: entry.rule, state: entry.state, t: entry.t, model: entry.model, verdict: entry.verdict, detail: entry.detail },
        apiary: { origin: entry.origin, seq: entry.seq, t: entry.t, via: connection.nodeId },
      });
      status.show({ fill: verified ? 'green' : 'yellow', shape: 'dot', text: `${entry.rule ?? 'decision'} ${entry.state ?? ''}`.trim() });
    }
  });
}
