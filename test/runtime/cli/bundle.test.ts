/**
 * What the bundle leaves out (runtime/cli/bundle.ts, TRIMS) is really out, and
 * what the node needs of the same packages is still in: every `apiary start`
 * parses this file, so code that is never run costs each start (issue 16).
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILT_CLI } from '../../support/global-setup.js';

describe('the bundled CLI (dist/apiary.mjs)', () => {
  let text = '';
  beforeAll(async () => { text = await readFile(BUILT_CLI, 'utf8'); });

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
    expect(text).not.toMatch(/^import[^;]*from"node:https?";/m);
    expect(text).not.toMatch(/;import[^;]*from"node:https?";/);
    expect(text).toMatch(/import\("node:https?"\)/);
  });
});
