/**
 * The Node.js flags the .deb's service runs the node with (packaging/apiary.service,
 * `Environment=NODE_OPTIONS=...`). The start-up and steady-state sections run
 * each checkout's node with its own unit's flags, as a board runs it, so a flag
 * there is measured with the code it ships with (issue 16's budgets).
 * APIARY_BENCH_SERVICE_FLAGS=0 runs plain `node` instead.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const SERVICE_UNIT = path.join('packaging', 'apiary.service');

/** The flags of `Environment=NODE_OPTIONS=...` in a unit file's text, in order (several such lines add up, as in systemd). */
export function nodeOptionsOf(unit: string): string[] {
  const flags: string[] = [];
  for (const line of unit.split('\n')) {
    const match = /^\s*Environment="?NODE_OPTIONS=([^"]*)"?\s*$/.exec(line);
    if (match?.[1] !== undefined) flags.push(...match[1].trim().split(/\s+/).filter(Boolean));
  }
  return flags;
}

/** The node flags of the checkout at `root` (none when it has no unit, or when APIARY_BENCH_SERVICE_FLAGS=0). */
export async function serviceNodeFlags(root: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  if (env.APIARY_BENCH_SERVICE_FLAGS === '0') return [];
  try {
    return nodeOptionsOf(await readFile(path.join(root, SERVICE_UNIT), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
