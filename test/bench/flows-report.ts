/** The rows of `npm run bench -- --only flows`: the node alone is the reference of every memory figure (ratio = with Node-RED / alone). */
import type { FlowsResults } from './flows.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

const MB = 1024; // KiB per MiB, for /proc's kB figures
/**
 * Issue 13: node and Node-RED together within 250 MB, so both fit a 512 MB
 * board. Judged on the sum of PSS: both processes run the same /usr/bin/node,
 * whose resident text a sum of VmRSS counts twice (proc.ts, `pssKiB`).
 */
const TOGETHER_MAX_MB = 250;

export function flowsRows(f: FlowsResults): Row[] {
  const memSection = 'node + supervised Node-RED (default flow) vs the node alone, in turns, new data dir, speed 60; VmRSS and PSS 10 s after the editor answers';
  const alone = summarize(f.alone.map((r) => r.node.rssKiB / MB));
  const reference = alone ? { label: 'MB node alone', value: alone.median } : undefined;
  const on = f.withNodeRed;
  const nodeRedKiB = (r: (typeof on)[number]) => r.nodeRed?.rssKiB ?? Number.NaN;
  const pssTogether = (r: (typeof on)[number]) => (r.node.pssKiB + (r.nodeRed?.pssKiB ?? Number.NaN)) / MB;
  const pssAlone = summarize(f.alone.map((r) => r.node.pssKiB / MB));
  const timeSection = 'Node-RED start-up and a reading through a flow (mqtt in -> mqtt out on the node\'s broker)';
  return [
    { section: memSection, metric: 'node alone (flows off): VmRSS', unit: 'MB', summary: alone },
    { section: memSection, metric: 'node with flows on: VmRSS of the node process', unit: 'MB', summary: summarize(on.map((r) => r.node.rssKiB / MB)), reference },
    { section: memSection, metric: 'its Node-RED child: VmRSS', unit: 'MB', summary: summarize(on.map((r) => nodeRedKiB(r) / MB)), reference },
    { section: memSection, metric: 'node + Node-RED: VmRSS together (the shared node binary counted twice)', unit: 'MB', summary: summarize(on.map((r) => (r.node.rssKiB + nodeRedKiB(r)) / MB)), reference },
    { section: memSection, metric: 'node alone (flows off): PSS', unit: 'MB', summary: pssAlone },
    { section: memSection, metric: 'node + Node-RED: PSS together (what both take of the RAM)', unit: 'MB', summary: summarize(on.map(pssTogether)), reference: pssAlone ? { label: 'MB node alone (PSS)', value: pssAlone.median } : undefined, target: { on: 'median', max: TOGETHER_MAX_MB, text: `≤ ${TOGETHER_MAX_MB} MB` } },
    { section: memSection, metric: 'node + Node-RED: VmHWM (peaks) together', unit: 'MB', summary: summarize(on.map((r) => (r.node.hwmKiB + (r.nodeRed?.hwmKiB ?? Number.NaN)) / MB)), reference: alone ? { label: 'MB node alone (VmRSS)', value: alone.median } : undefined },
    { section: timeSection, metric: 'Node-RED editor answers, from "Apiary node started"', unit: 'ms', summary: summarize(on.map((r) => r.editorAfterStartedMs ?? Number.NaN)) },
    { section: timeSection, metric: 'Node-RED editor answers, from its spawn ("Node-RED starting")', unit: 'ms', summary: summarize(on.map((r) => r.editorAfterSpawnMs ?? Number.NaN)) },
    { section: timeSection, metric: 'reading on the broker -> its echo from the flow (all runs)', unit: 'ms', summary: summarize(on.flatMap((r) => r.echoMs ?? [])) },
  ];
}
