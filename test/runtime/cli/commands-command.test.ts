import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiary } from '../../support/cli.js';

describe('apiary commands', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-commands-cli-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it("lists the node's commands from its registry, offline, with description and arguments", async () => {
    const { code, stdout, stderr } = await apiary(['commands'], dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('apiary/<node id>/cmd/<name>');
    for (const name of ['status', 'sim/swarm', 'shared/get', 'shared/set', 'mesh/revoke', 'models/publish', 'decisions/audit', 'ask', 'intents', 'readings/recent', 'readings/range', 'mesh/decisions', 'pay/credit-check', 'pay/send', 'pay/balance', 'pay/statement', 'pay/settle', 'tasks/request', 'tasks/pending', 'tasks/approve']) expect(stdout).toMatch(new RegExp(`^  ${name}\\s+\\S`, 'm'));
    expect(stdout).toContain('arguments: map (string), key (string), value');
    expect(stdout).toContain('arguments: [origin (string)], [limit (integer)]');
  });

  it('--json gives each command its arguments as JSON Schema (the MCP input schema)', async () => {
    const { code, stdout } = await apiary(['commands', '--json'], dir);
    expect(code).toBe(0);
    const commands = JSON.parse(stdout) as { name: string; description: string; write: boolean; args: { type: string; properties: Record<string, { description?: string }>; required?: string[] } }[];
    const set = commands.find((c) => c.name === 'shared/set');
    expect(set).toMatchObject({ write: true, args: { type: 'object', required: ['map', 'key', 'value'] } });
    expect(set?.args.properties.map?.description).toBe('the map, like thresholds');
    expect(commands.find((c) => c.name === 'status')).toMatchObject({ write: false, args: { type: 'object' } });
    // Payments: the commands that sign are writes; the others only read.
    expect(commands.find((c) => c.name === 'pay/send')).toMatchObject({ write: true, args: { required: ['payee', 'amount'] } });
    expect(commands.find((c) => c.name === 'pay/settle')).toMatchObject({ write: true, args: { required: ['peer', 'amount'] } });
    expect(commands.filter((c) => ['pay/credit-check', 'pay/balance', 'pay/statement'].includes(c.name)).map((c) => c.write)).toEqual([false, false, false]);
  });
});
