/**
 * Entry point of the CLI bundle (dist/apiary.cjs, run by dist/apiary.mjs:
 * loader-main.ts). CommonJS, so no top-level await: zod is configured first,
 * then the CLI's modules load.
 */
import { config } from 'zod';

// zod would compile a fast path (new Function) for each object schema at its first parse. For a
// config parsed once and messages parsed a few times a second, that costs more than it saves:
// without it, about 15% less start-up CPU and 1.4 MB less heap, the same CPU at 60x the workload
// (issue 16, docs/benchmarks.md). It is read as each schema is built, so before the CLI's modules load.
config({ jitless: true });
import('./cli.js').catch((err: unknown) => {
  process.stderr.write(`apiary: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
