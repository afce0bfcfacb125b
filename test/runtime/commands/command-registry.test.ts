import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CommandRegistry, describeArgs, jsonSchemaOf } from '../../../runtime/commands/command-registry.js';
import { nodeCommands } from '../../../runtime/apps/index.js';
import { ApiaryError, ErrorCodes } from '../../../runtime/errors.js';

function registry(): CommandRegistry {
  return new CommandRegistry()
    .define('echo', { description: 'answers with its arguments', args: z.strictObject({ text: z.string().min(1), times: z.number().int().min(1).max(3).default(1) }), handler: ({ text, times }) => text.repeat(times) })
    .define('sensors/reset', { description: 'resets a sensor', args: z.object({}), write: true, unavailable: () => 'this node has no sensors', handler: () => 'reset' })
    .define('fail', { description: 'refuses', args: z.object({}), handler: () => { throw new ApiaryError(ErrorCodes.MODEL_NOT_FOUND, 'no such model', { hint: 'install it first' }); } })
    .define('crash', { description: 'a bug', args: z.object({}), handler: () => { throw new TypeError('boom'); } });
}

describe('CommandRegistry', () => {
  it('lists commands in definition order, with their description and write flag', () => {
    const r = registry();
    expect(r.list().map((c) => c.name)).toEqual(['echo', 'sensors/reset', 'fail', 'crash']);
    expect(r.get('echo')).toMatchObject({ description: 'answers with its arguments', write: false });
    expect(r.get('sensors/reset')?.write).toBe(true);
    expect(r.get('nope')).toBeUndefined();
  });

  it('runs a command with validated arguments (defaults applied) in the reply shape {ok, result}', async () => {
    expect(await registry().run('echo', { text: 'ab', times: 2 })).toEqual({ ok: true, result: 'abab' });
    expect(await registry().run('echo', { text: 'ab' })).toEqual({ ok: true, result: 'ab' });
  });

  it('answers an unknown command with COMMAND_INVALID listing every known command', async () => {
    expect(await registry().run('ecco', {})).toEqual({
      ok: false, code: ErrorCodes.COMMAND_INVALID,
      error: 'unknown command "ecco": known commands are echo, sensors/reset, fail and crash',
    });
  });

  it('names the field, the value it got and a fix for bad arguments', async () => {
    const bad = await registry().run('echo', { text: '', times: 7 });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.code).toBe(ErrorCodes.COMMAND_INVALID);
    expect(bad.error).toContain('bad arguments for "echo"');
    expect(bad.error).toContain('field "text": got ""');
    expect(bad.error).toContain('field "times": got 7');
    expect(bad.error).toContain('fix: echo takes text (string), [times (integer)]');
    const missing = await registry().run('echo', undefined);
    expect(!missing.ok && missing.error).toContain('field "text": got nothing (the argument is missing)');
    const extra = await registry().run('echo', { text: 'a', txet: 'b' });
    expect(!extra.ok && extra.error).toContain('unknown argument "txet"');
  });

  it('says why a command is unavailable on this node, before looking at its arguments', async () => {
    expect(await registry().run('sensors/reset', { any: 1 })).toEqual({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'this node has no sensors' });
  });

  it("answers a handler's ApiaryError with its own code, message and hint, and throws any other error", async () => {
    expect(await registry().run('fail', {})).toEqual({ ok: false, code: ErrorCodes.MODEL_NOT_FOUND, error: 'no such model (install it first)' });
    await expect(registry().run('crash', {})).rejects.toThrow('boom');
  });

  it('refuses a duplicate or malformed command name', () => {
    const r = registry();
    expect(() => r.define('echo', { description: 'again', args: z.object({}), handler: () => undefined })).toThrow(expect.objectContaining({ code: ErrorCodes.COMMAND_DUPLICATE }) as Error);
    expect(() => r.define('Bad Name', { description: 'x', args: z.object({}), handler: () => undefined })).toThrow(/lower-case/);
  });

  it('exports each command\'s arguments as JSON Schema (the MCP input schema)', () => {
    const echo = registry().get('echo');
    if (!echo) throw new Error('defined above');
    expect(jsonSchemaOf(echo)).toMatchObject({
      type: 'object',
      properties: { text: { type: 'string', minLength: 1 }, times: { type: 'integer', minimum: 1, maximum: 3, default: 1 } },
      required: ['text'],
      additionalProperties: false,
    });
    expect(describeArgs(echo)).toBe('text (string), [times (integer)]');
  });
});

describe("the node's commands", () => {
  it('declares every command the node had before the registry, each with a description and a JSON Schema', () => {
    const commands = nodeCommands().list();
    // The kernel's first, then the application's, then the extensions'.
    expect(commands.map((c) => c.name)).toEqual(['status', 'shared/get', 'shared/set', 'mesh/revoke', 'sim/swarm', 'models/publish', 'decisions/audit', 'ask', 'intents', 'readings/recent', 'readings/range', 'mesh/decisions', 'update/status', 'update/publish', 'flows/status', 'flows/start', 'flows/stop', 'voice/listen', 'voice/say', 'voice/status', 'pay/credit-check', 'pay/send', 'pay/balance', 'pay/statement', 'pay/settle', 'tasks/request', 'tasks/list', 'tasks/show', 'tasks/pending', 'tasks/approve', 'tasks/reject']);
    // Another application brings its own: a sensor node has no colony to make swarm.
    expect(nodeCommands('sensor-node').list().map((c) => c.name)).toEqual(['status', 'shared/get', 'shared/set', 'mesh/revoke', 'models/publish', 'decisions/audit', 'ask', 'intents', 'readings/recent', 'readings/range', 'mesh/decisions', 'update/status', 'update/publish', 'flows/status', 'flows/start', 'flows/stop', 'voice/listen', 'voice/say', 'voice/status', 'pay/credit-check', 'pay/send', 'pay/balance', 'pay/statement', 'pay/settle', 'tasks/request', 'tasks/list', 'tasks/show', 'tasks/pending', 'tasks/approve', 'tasks/reject']);
    for (const command of commands) {
      expect(command.description.length, command.name).toBeGreaterThan(10);
      expect(jsonSchemaOf(command), command.name).toMatchObject({ type: 'object' });
    }
    const set = nodeCommands().get('shared/set');
    if (!set) throw new Error('declared');
    expect(jsonSchemaOf(set)).toMatchObject({ required: ['map', 'key', 'value'], additionalProperties: false });
  });

  it('without a node, every command is unavailable but still validated by name', async () => {
    const r = nodeCommands();
    expect(await r.run('status', {})).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'no node is running here' });
    expect(await r.run('shared/get', {})).toMatchObject({ ok: false, error: expect.stringContaining('the mesh is off') as string });
    expect(await r.run('sim/swarm', {})).toMatchObject({ ok: false, error: expect.stringContaining('no simulated device') as string });
    expect(await r.run('stat', {})).toMatchObject({ ok: false, error: expect.stringContaining('known commands are status, shared/get, shared/set, mesh/revoke, sim/swarm, models/publish, decisions/audit, ask, intents, readings/recent, readings/range, mesh/decisions, update/status, update/publish, flows/status, flows/start, flows/stop, voice/listen, voice/say, voice/status, pay/credit-check, pay/send, pay/balance, pay/statement, pay/settle, tasks/request, tasks/list, tasks/show, tasks/pending, tasks/approve and tasks/reject') as string });
  });
});
