/**
 * CPU time of this process's finished child programs (pocketsphinx,
 * espeak-ng), for the benchmark's "CPU seconds per utterance": Node reports
 * only its own usage, but Linux adds a child's user and system time to the
 * parent's `cutime`/`cstime` in /proc/self/stat once it is reaped. The
 * difference over an utterance counts every child reaped in that time;
 * resolution is one clock tick (USER_HZ, 100 on every Linux architecture).
 * Undefined off Linux.
 */
import { readFileSync } from 'node:fs';

const USER_HZ = 100;

export function childCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cutime = Number(fields[13]);
    const cstime = Number(fields[14]);
    if (!Number.isFinite(cutime) || !Number.isFinite(cstime)) return undefined;
    return ((cutime + cstime) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}
