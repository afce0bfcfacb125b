#!/usr/bin/env node
/**
 * Entry point of the `apiary` command. On Node 22.1+ compiled code is cached
 * between runs, which shortens start-up on a slow board; on Node 20 this is a
 * no-op. It must run before the CLI's modules load, hence the dynamic imports.
 */
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
// zod would compile a fast path (new Function) for each object schema at its first parse. For a
// config parsed once and messages parsed a few times a second, that costs more than it saves:
// without it, about 15% less start-up CPU and 1.4 MB less heap, the same CPU at 60x the workload
// (issue 16, docs/benchmarks.md). It is read as each schema is built, so before the CLI's modules load.
(await import('zod')).config({ jitless: true });
await import('./cli.js');
