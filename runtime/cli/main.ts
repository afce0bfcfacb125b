#!/usr/bin/env node
/**
 * Entry point of the `apiary` command. On Node 22.1+ compiled code is cached
 * between runs, which shortens start-up on a slow board; on Node 20 this is a
 * no-op. It must run before the CLI's modules load, hence the dynamic import.
 */
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import('./cli.js');
