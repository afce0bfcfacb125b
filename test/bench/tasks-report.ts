/** The rows of `npm run bench -- --only tasks`. */
import { summarize } from './stats.js';
import type { Row } from './table.js';
import { percentile, type TasksResults } from './tasks.js';

export function tasksRows(t: TasksResults): Row[] {
  const section = 'one task at a time on a 5-node loopback mesh of 5 owners (reading-at, 4 bidders, bid window 200 ms), links through counting TCP proxies';
  return [
    { section, metric: 'call for proposals -> accepted result', unit: 'ms', summary: summarize(t.latencyMs) },
    { section, metric: 'call for proposals -> accepted result, p95', unit: 'ms', summary: summarize([percentile(t.latencyMs, 95)]) },
    { section, metric: 'bytes on the wire per task (all links, both ways, gossip included)', unit: 'B', summary: summarize([t.wireBytesPerTask]) },
    { section, metric: "feed bytes per task (the requester's store: award, acknowledgement, result)", unit: 'B', summary: summarize([t.feedBytesPerTask]) },
    { section, metric: 'tasks failed', unit: 'tasks', summary: summarize([t.failed]) },
  ];
}
