/**
 * The payer's record of what it signed (issued.json): a temp file a kill -9
 * left beside it is cleared at load and the file kept; a file that is not a
 * state file (torn by hand, another program's) is refused with a stable code,
 * never read as empty (the node would then sign below what it signed).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { IssuedState } from '../../../../runtime/extensions/payments/issued-state.js';

describe('issued.json', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-issued-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('keeps its marks across a reload and clears a temp file a crashed save left', async () => {
    const file = IssuedState.fileIn(dir);
    const state = new IssuedState(file);
    state.raise('vouchers', 'a|b|credit', { seq: 7, total: 23 });
    await state.save();
    // What a kill during the next save leaves: a half-written temp file beside the whole one.
    await writeFile(`${file}.tmp-0123456789abcdef`, '{"v":1,"vouch');
    const reloaded = new IssuedState(file);
    await reloaded.load();
    expect(reloaded.voucher('a|b|credit')).toEqual({ seq: 7, total: 23 });
    expect(await readdir(path.dirname(file))).toEqual(['issued.json']);
  });

  it.each([['not JSON', '{"v":1,"vouch'], ['another shape', '{"v":2}'], ['a negative number', '{"v":1,"vouchers":{"k":{"seq":-1,"total":0}},"settlements":{}}']])('refuses %s with STORAGE_CORRUPT', async (_what, text) => {
    const file = IssuedState.fileIn(dir);
    await new IssuedState(file).save();
    await writeFile(file, text);
    await expect(new IssuedState(file).load()).rejects.toMatchObject({ code: ErrorCodes.STORAGE_CORRUPT, hint: expect.stringContaining('backup') as string });
  });
});
