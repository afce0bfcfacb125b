/**
 * Every command in the node's command registry is an `apiary` sub-command
 * with the registry's description: a command a new extension declares is
 * checked here without touching this test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPLICATIONS, nodeCommands } from '../../../runtime/apps/index.js';
import { NODE_COMMAND_VIEWS } from '../../../runtime/cli/node-command-views.js';
import { apiary } from '../../support/cli.js';

/** Help text with its line wrapping undone. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('apiary offers every registry command', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-commands-help-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const commands = [...new Map(APPLICATIONS.flatMap((app) => nodeCommands(app.name).list()).map((c) => [c.name, c])).values()];

  it('the registry declares the commands the CLI had before it was generated', () => {
    expect(commands.map((c) => c.name)).toEqual(expect.arrayContaining(['status', 'sim/swarm', 'shared/get', 'shared/set', 'mesh/revoke', 'models/publish', 'decisions/audit']));
  });

  it.each(commands.map((c) => [c.name, c] as const))('%s: `apiary <words> --help` shows its description, its arguments and the node options', async (name, command) => {
    const words = name.split('/');
    const { code, stdout } = await apiary([...words, '--help'], dir);
    expect(code).toBe(0);
    const help = flat(stdout);
    expect(help).toContain(`Usage: apiary ${words.join(' ')} [options]`);
    expect(help).toContain(flat(command.description));
    for (const option of ['--config <file>', '--data-dir <dir>', '--port <port>', '--host <host>', '--node <nodeId>', '--timeout <ms>', '--json']) expect(help).toContain(option);
    // Each argument is a --flag, unless the command's presentation types it in place.
    const inPlace = new Set(NODE_COMMAND_VIEWS[name]?.positional?.map((p) => p.field) ?? []);
    for (const field of Object.keys(command.args.shape)) {
      if (inPlace.has(field)) {
        const p = NODE_COMMAND_VIEWS[name]?.positional?.find((x) => x.field === field);
        const shown = p?.optional ? `\\[${p.name ?? field}\\]` : `<${p?.name ?? field}>`;
        expect(help).toMatch(new RegExp(`Usage: apiary ${words.join(' ')} \\[options\\].*${shown}`));
      }
      else expect(help).toContain(`--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `);
    }
    // The group lists it with its description (the top-level list for a one-word command).
    const parent = await apiary([...words.slice(0, -1), '--help'], dir);
    expect(flat(parent.stdout)).toMatch(new RegExp(`${words.at(-1) ?? ''} \\[options\\]`));
  });

  it('apiary audit is decisions audit', async () => {
    const audit = await apiary(['audit', '--help'], dir);
    const decisions = await apiary(['decisions', 'audit', '--help'], dir);
    expect(audit.code).toBe(0);
    expect(flat(audit.stdout).replace('Usage: apiary audit', 'Usage: apiary decisions audit')).toBe(flat(decisions.stdout));
  });
});
