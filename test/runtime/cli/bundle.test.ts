/**
 * What the bundle leaves out (runtime/cli/bundle.ts, TRIMS) is really out, and
 * what the node needs of the same packages is still in: every `apiary start`
 * parses this file, so code that is never run costs each start (issue 16).
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { leftoverImports } from '../../../runtime/cli/bundle-imports.js';
import { BUILT_BUNDLE, BUILT_CLI } from '../../support/global-setup.js';

describe('the bundled CLI (dist/apiary.cjs)', () => {
  let text = '';
  beforeAll(async () => { text = await readFile(BUILT_BUNDLE, 'utf8'); });

  it("holds johnny-five's Board without its REPL, which would load node:repl", () => {
    expect(text).toContain('johnny-five/lib/board.js');
    expect(text).not.toContain('require("repl")');
    expect(text).toContain('the johnny-five REPL is not in the Apiary bundle');
  });

  it("holds zod's English messages and none of its other locales", () => {
    expect(text).toContain('Invalid input: expected');
    expect(text).not.toContain('Eingabe: erwartet'); // the German locale's "invalid input"
    expect(text).not.toContain('zod/v4/locales/fr.js');
  });

  it('loads node:http and node:https only with the MCP endpoint', () => {
    // A module-level import is a `var import_node_http = require("node:http")` at the top; a lazy one is required inside a promise.
    expect(text).not.toMatch(/=\s*require\("node:https?"\)/);
    expect(text).toMatch(/Promise\.resolve\(\)\.then\(\(\)=>__toESM\(require\("node:https?"\)/);
  });

  it('calls no import(), which code from the cache cannot run on Node 20; computed ones go to the loader', () => {
    expect(leftoverImports(text)).toBe(0);
    expect(text).toContain('__apiaryImport('); // onnxruntime-web loads its WebAssembly glue by URL
    expect(leftoverImports('a = import("x"); b = await import(y)')).toBe(2);
    expect(leftoverImports('x.import(y); __apiaryImport(z)')).toBe(0);
  });

  it('is run by a small ES module entry, so `apiary` parses the bundle once, through the cache', async () => {
    const entry = await readFile(BUILT_CLI, 'utf8');
    expect(entry.length).toBeLessThan(20_000);
    expect(entry).toContain('apiary.cjs');
    expect(entry).not.toContain('johnny-five');
  });
});
