/**
 * `apiary owner mandate sign`, run as the CLI: the signed file checks out
 * with the owner key, loads as the node's mandate, and is refused when it
 * is altered, for another node, or not a mandate (a clear error naming the field).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { loadMandate, mandateFault, type SignedMandate } from '../../../../runtime/extensions/tasks/mandate.js';
import { apiary } from '../../../support/cli.js';

describe('apiary owner mandate sign', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mandate-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('signs a mandate the node loads, and that fails once altered or for another node', async () => {
    const owner = (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity;
    const node = 'abcdefghijkl';
    await writeFile(path.join(dir, 'mandate.json'), JSON.stringify({ v: 1, node, sell: { kinds: ['hive-sound'], minPrice: 1 }, buy: { kinds: ['reading-at'], maxPrice: 2 }, dailyBudget: 20, expires: '2099-01-01T00:00:00Z' }));
    const run = await apiary(['owner', 'mandate', 'sign', '--key-file', 'owner.json', '--file', 'mandate.json', '--out', 'signed.json'], dir);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`signed the mandate for node ${node}`);
    const signed = JSON.parse(await readFile(path.join(dir, 'signed.json'), 'utf8')) as SignedMandate;
    expect(signed.owner).toBe(owner.publicKey);
    expect(mandateFault(signed, node, owner.publicKey, Date.now())).toBeUndefined();
    expect((await loadMandate(path.join(dir, 'signed.json'), node, owner.publicKey, Date.now())).mandate.dailyBudget).toBe(20);
    expect(mandateFault({ ...signed, mandate: { ...signed.mandate, dailyBudget: 2000 } }, node, owner.publicKey, Date.now())).toBe('bad signature');
    expect(mandateFault(signed, 'bbbbbbbbbbbb', owner.publicKey, Date.now())).toBe(`made for node ${node}`);
    expect(mandateFault(signed, node, 'A'.repeat(43), Date.now())).toBe('not signed by the owner of the node');
    expect(mandateFault(signed, node, owner.publicKey, Date.parse('2100-01-01T00:00:00Z'))).toMatch(/^expired at/);
    await expect(loadMandate(path.join(dir, 'signed.json'), 'bbbbbbbbbbbb', owner.publicKey, Date.now())).rejects.toThrow(/tasks\.mandate: .*made for node abcdefghijkl/);
  });

  it('refuses a file that is not a mandate, naming the field', async () => {
    await loadOrCreateKeyFile(path.join(dir, 'owner.json'));
    await writeFile(path.join(dir, 'mandate.json'), JSON.stringify({ v: 1, node: 'abcdefghijkl', sell: { kinds: ['mow-the-lawn'] }, buy: { kinds: [] }, expires: 'soon' }));
    const run = await apiary(['owner', 'mandate', 'sign', '--key-file', 'owner.json', '--file', 'mandate.json'], dir);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/sell\.kinds\.0: expected a task kind/);
    expect(run.stderr).toMatch(/expires: an ISO time/);
  });
});
