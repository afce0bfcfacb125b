/**
 * The CLI's node commands are generated from a command registry
 * (runtime/cli/registry-cli.ts): a made-up command shows the help, flag
 * parsing and argument checks any new extension's command gets with no CLI
 * code; a real node answers real commands sent through the real MQTT path.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { allNodeCommands, createNode } from '../../../runtime/apps/index.js';
import { addRegistryCommands, parseAs, type Presentation, type SendCommand } from '../../../runtime/cli/registry-cli.js';
import { NODE_COMMAND_GROUPS, NODE_COMMAND_VIEWS } from '../../../runtime/cli/node-command-views.js';
import { askNode, withNodeOptions } from '../../../runtime/cli/node-options.js';
import type { NodeReply } from '../../../runtime/cli/node-request.js';
import { CommandRegistry } from '../../../runtime/commands/command-registry.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import { ApiaryError, ErrorCodes } from '../../../runtime/errors.js';

/** A command no extension has: string, integer, boolean, JSON and optional arguments. */
function gardenRegistry(): CommandRegistry {
  return new CommandRegistry().define('garden/water', {
    description: 'water one bed of the garden for a while',
    args: z.strictObject({
      bed: z.string().regex(/^[a-z]+$/, { error: 'bed: lower-case letters, like roses' }).describe('the bed to water'),
      litres: z.number().int().min(1).max(50).describe('how much water'),
      dry: z.boolean().optional().describe('only pretend'),
      fromSeq: z.number().int().min(1).optional().describe('resume after this step'),
      plan: z.json().optional().describe('a watering plan'),
    }),
    write: true,
    handler: () => undefined,
  });
}

interface Cli {
  program: Command;
  sent: { command: string; args: Record<string, unknown>; options: Record<string, unknown> }[];
  out: string[];
  help: string[];
  run: (...argv: string[]) => Promise<void>;
}

/** A program holding only the generated commands; `reply` stands in for the node (the sending function is all that is stubbed). */
function cli(registry: CommandRegistry, presentations: Record<string, Presentation> = {}, reply: (command: string) => NodeReply = () => ({ nodeId: 'aaaaaaaaaaaa', ok: true, result: { watered: true } })): Cli {
  const sent: Cli['sent'] = [];
  const out: string[] = [];
  const help: string[] = [];
  const program = new Command('apiary').exitOverride().configureOutput({ writeOut: (t) => help.push(t), writeErr: (t) => help.push(t) });
  const send: SendCommand = (command, args, options) => {
    sent.push({ command, args, options });
    return Promise.resolve(reply(command));
  };
  addRegistryCommands(program, registry, { send, nodeOptions: withNodeOptions, presentations, write: (t) => out.push(t) });
  return { program, sent, out, help, run: async (...argv) => { await program.parseAsync(argv, { from: 'user' }); } };
}

/** What commander threw, or fails the test. */
async function commanderError(run: Promise<void>): Promise<CommanderError> {
  const err = await run.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof CommanderError)) throw new Error(`expected a commander error, got ${String(err)}`);
  return err;
}

describe('CLI commands generated from a command registry', () => {
  afterEach(() => { process.exitCode = undefined; });

  it('help: the registry description, the node options, and a flag per argument with its type, default and whether it is required', async () => {
    const { run, help } = cli(gardenRegistry());
    expect((await commanderError(run('garden', 'water', '--help'))).code).toBe('commander.helpDisplayed');
    const text = help.join('').replace(/\s+/g, ' ');
    expect(text).toContain('Usage: apiary garden water [options]');
    expect(text).toContain('water one bed of the garden for a while');
    for (const flag of ['--bed <string> the bed to water (required)', '--litres <integer> how much water (required)', '--dry [true|false] only pretend', '--from-seq <integer> resume after this step',
      '--plan <json> a watering plan (JSON; a bare word is taken as a string)', '--config <file>', '--data-dir <dir>', '--port <port>', '--host <host>', '--node <nodeId>', '--timeout <ms>', '--json']) {
      expect(text).toContain(flag);
    }
    expect(text).not.toContain('--dry [true|false] only pretend (required)');
    help.length = 0;
    expect((await commanderError(run('garden', '--help'))).code).toBe('commander.helpDisplayed');
    expect(help.join('')).toMatch(/water \[options\]\s+water one bed/);
  });

  it('parses each flag by its JSON Schema type and sends the arguments with the node options', async () => {
    const { run, sent, out } = cli(gardenRegistry());
    await run('garden', 'water', '--bed', 'roses', '--litres', '12', '--dry', '--from-seq', '3', '--plan', '{"every": "day"}', '--port', '1883', '--node', 'abcdefghijkl', '--timeout', '900');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.command).toBe('garden/water');
    expect(sent[0]?.args).toEqual({ bed: 'roses', litres: 12, dry: true, fromSeq: 3, plan: { every: 'day' } });
    expect(sent[0]?.options).toMatchObject({ port: 1883, node: 'abcdefghijkl', timeout: 900 });
    // No formatter: the result as JSON.
    expect(JSON.parse(out.join(''))).toEqual({ watered: true });
    await run('garden', 'water', '--bed', 'tulips', '--litres', '1', '--dry', 'false', '--plan', 'weekly');
    expect(sent[1]?.args).toEqual({ bed: 'tulips', litres: 1, dry: false, plan: 'weekly' });
  });

  it("refuses a bad value before sending, with the registry's field-and-fix message (the one a node answers)", async () => {
    const registry = gardenRegistry();
    const { run, sent } = cli(registry);
    for (const [argv, args] of [
      [['--bed', 'roses', '--litres', '0'], { bed: 'roses', litres: 0 }],
      [['--bed', 'roses', '--litres', 'lots'], { bed: 'roses', litres: 'lots' }],
      [['--bed', 'Roses!', '--litres', '2'], { bed: 'Roses!', litres: 2 }],
      [['--bed', 'roses', '--litres', '2.5', '--dry', 'maybe'], { bed: 'roses', litres: 2.5, dry: 'maybe' }],
    ] as const) {
      const err = await run('garden', 'water', ...argv).then(() => undefined, (e: unknown) => e);
      const answer = await registry.run('garden/water', args);
      if (answer.ok) throw new Error('the registry accepted a bad value');
      expect(err).toBeInstanceOf(ApiaryError);
      expect(err).toMatchObject({ code: ErrorCodes.COMMAND_INVALID, message: answer.error });
    }
    expect(sent).toEqual([]);
    expect((await registry.run('garden/water', { bed: 'roses', litres: 'lots' }) as { error: string }).error).toContain('field "litres": got "lots"');
  });

  it('refuses a missing required flag and an unknown one, suggesting the flag meant', async () => {
    const { run, sent } = cli(gardenRegistry());
    const missing = await commanderError(run('garden', 'water', '--litres', '2'));
    expect(missing.code).toBe('commander.missingMandatoryOptionValue');
    expect(missing.message).toContain("'--bed <string>'");
    const unknown = await commanderError(run('garden', 'water', '--bed', 'roses', '--litres', '2', '--form-seq', '3'));
    expect(unknown.code).toBe('commander.unknownOption');
    expect(unknown.message).toContain('(Did you mean --from-seq?)');
    expect(sent).toEqual([]);
  });

  it("a node's refusal is thrown with the node's code and message", async () => {
    const { run } = cli(gardenRegistry(), {}, () => ({ nodeId: 'aaaaaaaaaaaa', ok: false, code: ErrorCodes.SHARED_STATE_FORBIDDEN, error: 'the roses are not yours' }));
    await expect(run('garden', 'water', '--bed', 'roses', '--litres', '2')).rejects.toMatchObject({ code: ErrorCodes.SHARED_STATE_FORBIDDEN, message: 'the roses are not yours' });
  });

  it('a presentation: positionals (one read from text, one for the formatter only), another spelling, a formatter, --json and the exit code', async () => {
    const presentation: Presentation = {
      also: ['water'],
      positional: [{ field: 'bed', name: 'bed-name', read: (text) => text.toLowerCase() }, { field: 'litres' }, { name: 'say', optional: true, description: 'what to say' }],
      format: ({ nodeId, args, view }) => `node ${nodeId} watered ${String(args.bed)}${view.say ? `: ${view.say}` : ''}`,
      exitCode: (result) => ((result as { watered: boolean }).watered ? 0 : 3),
      timeoutMs: 12_345,
    };
    const { run, sent, out, help } = cli(gardenRegistry(), { 'garden/water': presentation });
    await run('water', 'ROSES', '4', 'hello');
    expect(sent[0]).toMatchObject({ command: 'garden/water', args: { bed: 'roses', litres: 4 }, options: { timeout: 12_345 } });
    expect(out.pop()).toBe('node aaaaaaaaaaaa watered roses: hello\n');
    await run('garden', 'water', 'tulips', '2', '--json', '--timeout', '500');
    expect(sent[1]?.options).toMatchObject({ timeout: 500 });
    expect(JSON.parse(out.pop() ?? '')).toEqual({ watered: true });
    await expect(run('water', 'roses', '99')).rejects.toThrow(/field "litres": got 99/);
    expect((await commanderError(run('water', '--help'))).code).toBe('commander.helpDisplayed');
    expect(help.join('')).toContain('Usage: apiary water [options] <bed-name> <litres> [say]');
    expect(process.exitCode ?? 0).toBe(0);
    const failing = cli(gardenRegistry(), { 'garden/water': presentation }, () => ({ nodeId: 'aaaaaaaaaaaa', ok: true, result: { watered: false } }));
    await failing.run('water', 'roses', '1');
    expect(process.exitCode).toBe(3);
  });

  it('an argument that clashes with a CLI option, or a command the CLI already has, is a clear error', () => {
    const clash = new CommandRegistry().define('garden/water', { description: 'x', args: z.object({ port: z.number() }), handler: () => undefined });
    expect(() => cli(clash)).toThrow('command "garden/water": its argument "port" clashes with the CLI option -p, --port <port>');
    const program = new Command('apiary');
    program.command('garden').command('water');
    expect(() => addRegistryCommands(program, gardenRegistry(), { send: () => Promise.reject(new Error('unused')), nodeOptions: withNodeOptions }))
      .toThrow('the CLI already has a command "garden water"');
  });

  it('parses text by kind; what does not convert is passed on for the schema to refuse', () => {
    expect(parseAs('number', '2.5')).toBe(2.5);
    expect(parseAs('number', '')).toBe('');
    expect(parseAs('number', 'Infinity')).toBe('Infinity');
    expect(parseAs('boolean', 'yes')).toBe('yes');
    expect(parseAs('json', '[1, "a"]')).toEqual([1, 'a']);
    expect(parseAs('json', 'swarming')).toBe('swarming');
    expect(parseAs('string', '12')).toBe('12');
  });
});

describe('generated node commands against a real node', () => {
  let dir: string;
  let node: ApiaryNode;
  const out: string[] = [];
  let program: Command;
  const run = (...argv: string[]) => program.parseAsync([...argv, '--port', String(node.brokerPort), '--data-dir', dir], { from: 'user' });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-registry-cli-'));
    node = createNode(parseConfig({ node: { dataDir: dir }, broker: { port: 0 }, homeAssistant: { enabled: false } }), pino({ level: 'silent' }));
    await node.start();
    program = new Command('apiary').exitOverride();
    addRegistryCommands(program, allNodeCommands(), {
      send: (command, args, options) => askNode(options, command, args), nodeOptions: withNodeOptions, presentations: NODE_COMMAND_VIEWS, groups: NODE_COMMAND_GROUPS, write: (t) => out.push(t),
    });
  });

  afterAll(async () => {
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('shared set and shared get go over MQTT to the node and print its answer', async () => {
    await run('shared', 'set', 'thresholds', 'swarming', '0.75');
    expect(out.pop()).toBe(`node ${node.nodeId}: thresholds.swarming = 0.75\n`);
    await run('shared', 'get', 'thresholds');
    expect(JSON.parse(out.pop() ?? '')).toEqual({ swarming: 0.75 });
    await run('shared', 'get', '--json');
    expect(JSON.parse(out.pop() ?? '')).toMatchObject({ thresholds: { swarming: 0.75 } });
  });

  it("a bad value is refused before sending with exactly the node's own answer", async () => {
    const cliError = await run('shared', 'set', 'members', 'x', '1').then(() => undefined, (e: unknown) => e);
    const nodeAnswer = await askNode({ port: node.brokerPort, dataDir: dir }, 'shared/set', { map: 'members', key: 'x', value: 1 });
    expect(nodeAnswer).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID });
    expect(cliError).toMatchObject({ code: ErrorCodes.COMMAND_INVALID, message: nodeAnswer.error });
  });

  it('audit and decisions audit are the same command; --limit is checked by the registry', async () => {
    await run('audit', '--limit', '5', '--json');
    expect(Array.isArray(JSON.parse(out.pop() ?? ''))).toBe(true);
    await run('decisions', 'audit', '--limit', '5');
    expect(out.pop()).toContain(`node ${node.nodeId}`);
    await expect(run('decisions', 'audit', '--limit', '500')).rejects.toThrow('field "limit": got 500');
  });

  it('mesh revoke reads its file and sends its JSON; a file that is not JSON is named', async () => {
    const file = path.join(dir, 'bad.revocation.json');
    await writeFile(file, JSON.stringify({ v: 2 }));
    await expect(run('mesh', 'revoke', file)).rejects.toMatchObject({ code: ErrorCodes.CERTIFICATE_INVALID, message: expect.stringContaining('malformed revocation') as string });
    await writeFile(file, 'not json');
    await expect(run('mesh', 'revoke', file)).rejects.toMatchObject({ code: ErrorCodes.USAGE_INVALID, message: expect.stringContaining(`${file} is not JSON`) as string });
  });
});
