/** The rows of `npm run bench -- --only arm64`, labelled as emulated: qemu's times and memory are not a board's. */
import type { Arm64Results } from './arm64.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

const MB = 1024; // KiB per MiB, for /proc's kB figures

export function arm64Rows(a: Arm64Results): Row[] {
  const section = 'arm64 package under qemu-aarch64 -cpu cortex-a53 (EMULATED on this x86-64 host, not a Pi), cold start, speed 60, onnxruntime-node; ms from spawn';
  const noop = summarize(a.noopMs);
  const reference = noop ? { label: 'ms emulated node -e 0', value: noop.median } : undefined;
  const idleRss = { label: 'MB idle emulated node', value: a.idle.rssKiB / MB };
  return [
    { section, metric: '"Apiary node started" log line', unit: 'ms', summary: summarize(a.runs.map((r) => r.startedMs)), reference },
    { section, metric: 'first reading on MQTT', unit: 'ms', summary: summarize(a.runs.map((r) => r.firstReadingMs)), reference },
    { section, metric: 'first model output on MQTT', unit: 'ms', summary: summarize(a.runs.map((r) => r.firstModelMs)), reference },
    { section, metric: 'emulated node -e 0, spawn to exit', unit: 'ms', summary: noop },
    { section, metric: 'qemu VmRSS at the first model output (qemu included)', unit: 'MB', summary: summarize(a.runs.map((r) => r.memory.rssKiB / MB)), reference: idleRss },
    { section, metric: 'qemu VmHWM at the first model output (qemu included)', unit: 'MB', summary: summarize(a.runs.map((r) => r.memory.hwmKiB / MB)), reference: idleRss },
  ];
}
