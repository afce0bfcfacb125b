/** Renders a decision audit for a terminal: one line per decision, failures first in the summary. */
import type { AuditResult, AuditVerdict } from '../extensions/decision-audit/decision-audit.js';

/** Verdicts that mean a record does not hold up (the command exits 1). */
export const AUDIT_FAILURES: ReadonlySet<AuditVerdict> = new Set(['input-hash-mismatch', 'output-mismatch', 'value-mismatch', 'malformed']);

const MARK: Record<AuditVerdict, string> = {
  verified: 'ok  ',
  'no-inference': 'n/a ',
  'model-unavailable': '?   ',
  'input-hash-mismatch': 'FAIL',
  'output-mismatch': 'FAIL',
  'value-mismatch': 'FAIL',
  malformed: 'FAIL',
};

export function formatAudit(nodeId: string, results: readonly AuditResult[]): string {
  if (results.length === 0) return `node ${nodeId}: no decisions in the feeds it holds`;
  const lines = results.map((r) => {
    const when = r.t === undefined ? '?' : new Date(r.t).toISOString();
    return `${MARK[r.verdict]} ${r.origin}#${r.seq} ${when} ${r.rule ?? '?'} ${r.state ?? ''}: ${r.verdict}: ${r.detail}`;
  });
  const failed = results.filter((r) => AUDIT_FAILURES.has(r.verdict)).length;
  const verified = results.filter((r) => r.verdict === 'verified').length;
  lines.push(`node ${nodeId} audited ${results.length} decision(s): ${verified} verified, ${failed} failed`);
  return lines.join('\n');
}
