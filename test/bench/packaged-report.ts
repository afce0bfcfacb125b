/** The rows of `npm run bench -- --only packaged`: each packaged figure with the checkout's median as its reference (ratio = packaged / checkout). */
import type { AppRun } from './arm64.js';
import type { PackagedResults } from './packaged.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

const MB = 1024; // KiB per MiB, for /proc's kB figures

export function packagedRows(p: PackagedResults): Row[] {
  const section = `packaged ${p.arch} app (extracted .deb, through its launcher) vs the git checkout's dist/apiary.mjs, native, in turns, cold start, speed 60, onnxruntime-node; ms from spawn`;
  const rows: Row[] = [];
  const metrics: [string, string, (r: AppRun) => number][] = [
    ['"Apiary node started" log line', 'ms', (r) => r.startedMs],
    ['first reading on MQTT', 'ms', (r) => r.firstReadingMs],
    ['first model output on MQTT', 'ms', (r) => r.firstModelMs],
    ['VmRSS at the first model output', 'MB', (r) => r.memory.rssKiB / MB],
    ['VmHWM at the first model output', 'MB', (r) => r.memory.hwmKiB / MB],
  ];
  for (const [metric, unit, pick] of metrics) {
    const checkout = summarize(p.checkout.map(pick));
    rows.push(
      { section, metric: `packaged: ${metric}`, unit, summary: summarize(p.packaged.map(pick)), ...(checkout ? { reference: { label: `${unit} checkout`, value: checkout.median } } : {}) },
      { section, metric: `checkout: ${metric}`, unit, summary: checkout },
    );
  }
  return rows;
}
