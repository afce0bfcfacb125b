/**
 * How the CLI types and prints the node commands whose command-line form is
 * not the generic `--flag <value>` one (registry-cli.ts). The commands, their
 * descriptions and their argument checks come from the command registry;
 * this table only keeps the spellings people already use and the replies
 * readable. A command missing here works all the same, printing its result
 * as JSON.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuditResult } from '../extensions/decision-audit/decision-audit.js';
import type { UpdateReport } from '../extensions/model-updates/model-updates.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { AUDIT_FAILURES, formatAudit } from './format-audit.js';
import { formatStatus } from './format-status.js';
import { formatBalance, formatCreditCheck, formatSettlement, formatStatement, formatVoucher } from './format-payments.js';
import type { BalanceRow, Statement } from '../extensions/payments/reports.js';
import type { CreditCheck } from '../extensions/payments/commands.js';
import type { Settlement, Voucher } from '../extensions/payments/signed-records.js';
import type { Presentation } from './registry-cli.js';

/** Help of the commands that group node commands. */
export const NODE_COMMAND_GROUPS: Readonly<Record<string, string>> = {
  sim: 'control a simulated beehive node',
  shared: 'the apiary-wide shared document (members, thresholds, catalogue), replicated to every node',
  mesh: 'the mesh of nodes this node links with',
  models: 'the models a node runs: shipped ones are trusted with the code, any other must be signed by an owner the node trusts',
  decisions: 'the decisions a node made, each signed into its feed with the evidence behind it',
  flows: 'the optional Node-RED the node runs and supervises in its own process (flows.enabled)',
  readings: "a node's stored readings",
  pay: 'offline micro-payments between nodes: cumulative signed vouchers (IOUs backed by their owners), credit limits, settlements (payments.enabled)',
};

/** A file's JSON, or an error naming the file and what is wrong with it. */
async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `${file} is not JSON: ${(err as Error).message}`, { hint: 'pass the file `apiary owner revoke` wrote, unchanged' });
  }
}

const at = (t: number) => new Date(t).toISOString();

export const NODE_COMMAND_VIEWS: Readonly<Record<string, Presentation>> = {
  status: { format: ({ result }) => formatStatus(result) },
  'sim/swarm': {
    format: ({ nodeId, result }) => {
      const s = result as { preSwarmFrom: number; swarmFrom: number; swarmUntil: number };
      return `node ${nodeId}: pre-swarm from ${at(s.preSwarmFrom)}, swarming from ${at(s.swarmFrom)}, swarm leaves at ${at(s.swarmUntil)} (node time)`;
    },
  },
  'shared/get': {
    positional: [{ name: 'map', optional: true, description: 'only this map, like members or thresholds' }],
    format: ({ result, view }) => {
      const doc = result as Record<string, unknown>;
      return JSON.stringify(view.map === undefined ? doc : (doc[view.map] ?? {}), null, 2);
    },
  },
  'shared/set': {
    positional: [
      { field: 'map' },
      { field: 'key' },
      { field: 'value', description: 'a JSON value, like 0.75 or \'{"above": 38}\' (a bare word is taken as a string)' },
    ],
    format: ({ nodeId, result }) => {
      const { map, key, value } = result as { map: string; key: string; value: unknown };
      return `node ${nodeId}: ${map}.${key} = ${JSON.stringify(value)}`;
    },
  },
  'mesh/revoke': {
    positional: [{ field: 'revocation', name: 'file', description: 'the revocation file, as `apiary owner revoke` wrote it', read: readJsonFile }],
    format: ({ nodeId, result }) => {
      const { nodeId: revoked, applied } = result as { nodeId: string; applied: boolean };
      return `node ${nodeId}: ${applied ? `revoked node ${revoked}; it spreads to every node with the feed` : `node ${revoked} was already revoked here`}`;
    },
  },
  'models/publish': {
    // The node reads the folder: a path typed here is made absolute.
    positional: [{ field: 'dir', description: 'the model folder (manifest.json + model file), signed with `apiary models sign`', read: (dir) => path.resolve(dir) }],
    timeoutMs: 30_000,
    format: ({ nodeId, result }) => {
      const r = result as UpdateReport;
      return `node ${nodeId}: published ${r.name} ${r.version} as feed entry #${r.release?.seq ?? '?'}; here it is ${r.status}${r.reason ? ` (${r.reason})` : ''}\n` +
        '  nodes that run this model and trust the signer install it when the entry reaches them; see `apiary status`';
    },
    exitCode: (result) => ((result as UpdateReport).status === 'rolled-back' || (result as UpdateReport).status === 'refused' ? 1 : 0),
  },
  // cli.ts replaces this view with its own `ask` (also --listen and --audio, so the question is optional there).
  ask: {
    positional: [{ field: 'question', optional: true, description: 'the question, in quotes, like "how is the hive?" or "is it going to swarm?"' }],
  },
  'decisions/audit': {
    also: ['audit'],
    format: ({ nodeId, result }) => formatAudit(nodeId, result as AuditResult[]),
    exitCode: (result) => ((result as AuditResult[]).some((r) => AUDIT_FAILURES.has(r.verdict)) ? 1 : 0),
  },
  'pay/balance': {
    format: ({ nodeId, result }) => formatBalance(nodeId, result as BalanceRow[]),
  },
  'pay/statement': {
    positional: [{ field: 'peer' }],
    format: ({ nodeId, result }) => formatStatement(nodeId, result as Statement),
  },
  'pay/send': {
    positional: [{ field: 'payee' }],
    format: ({ nodeId, result }) => formatVoucher(nodeId, result as Voucher),
  },
  'pay/settle': {
    positional: [{ field: 'peer' }],
    format: ({ nodeId, result }) => formatSettlement(nodeId, result as Settlement),
  },
  'pay/credit-check': {
    positional: [{ field: 'payer' }],
    format: ({ nodeId, result }) => formatCreditCheck(nodeId, result as CreditCheck),
    exitCode: (result) => ((result as CreditCheck).ok ? 0 : 1),
  },
};
