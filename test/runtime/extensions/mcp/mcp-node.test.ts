/**
 * MCP against a real node (simulated hive at 120x, real aedes broker, real
 * MQTT.js, mesh on): the SDK's own Client in-process on the server
 * `apiary mcp` builds, the tool list within its budget, every tool called,
 * and owner-only writes enforced by the node: unsigned, non-owner, replayed,
 * stale and malformed envelopes refused and counted; owner-signed writes run.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCommand } from '../../../../runtime/commands/command-auth.js';
import { apiary } from '../../../support/cli.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../../../runtime/identity/identity.js';
import { MCP_TOOL_NAMES } from '../../../../runtime/mcp/mcp-server.js';
import { inProcessClient, MAX_TOOL_NAME, MAX_TOOLS_LIST_CHARS, startMcpTestNode, toolJson, toolText, waitForReadings, type McpTestNode } from './mcp-support.js';


describe('MCP over a real node', () => {
  let target: McpTestNode;
  let owner: NodeIdentity;
  let stranger: NodeIdentity;
  let asOwner: Client;
  let asStranger: Client;
  let keyless: Client;

  const counters = async () => ((await target.ask('status')).result as { counters: Record<string, number> }).counters;
  const shared = async () => (await target.ask('shared/get')).result as Record<string, Record<string, unknown> | undefined>;

  beforeAll(async () => {
    target = await startMcpTestNode('apiary-mcp-');
    // The mesh made the node's owner key on first start (mesh.owner.keyFile, default <dataDir>/owner.json).
    owner = (await loadOrCreateKeyFile(path.join(target.dir, 'hive', 'owner.json'))).identity;
    stranger = (await loadOrCreateKeyFile(path.join(target.dir, 'stranger.json'))).identity;
    [asOwner, asStranger, keyless] = await Promise.all([inProcessClient(target, owner), inProcessClient(target, stranger), inProcessClient(target, undefined)]);
    await waitForReadings(target, 3);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([asOwner, asStranger, keyless].map((c) => c?.close()));
    await target?.node.stop();
    if (target) await rm(target.dir, { recursive: true, force: true });
  });

  it('lists at most 8 tools, short names, the whole list within 6,000 characters, write tools with MCP hints', async () => {
    const list = await asOwner.listTools();
    const size = JSON.stringify(list).length;
    expect(size).toBeLessThanOrEqual(MAX_TOOLS_LIST_CHARS);
    expect(list.tools.map((t) => t.name).sort()).toEqual([...MCP_TOOL_NAMES].sort());
    for (const tool of list.tools) expect(tool.name.length, tool.name).toBeLessThanOrEqual(MAX_TOOL_NAME);
    const byName = new Map(list.tools.map((t) => [t.name, t]));
    for (const name of ['shared_set', 'command']) expect(byName.get(name)?.annotations, name).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    for (const name of ['status', 'readings', 'decisions', 'ask', 'peers', 'shared_get']) expect(byName.get(name)?.annotations, name).toMatchObject({ readOnlyHint: true });
    // `command` names the registry's other commands, writes marked.
    expect(byName.get('command')?.description).toContain('mesh/revoke*');
  });

  it('answers status, readings (with a time range), decisions, ask and peers from the node', async () => {
    const status = toolJson(await asOwner.callTool({ name: 'status', arguments: {} })) as { nodeId: string; latest: { readings: Record<string, unknown> } };
    expect(status.nodeId).toBe(target.node.nodeId);
    expect(Object.keys(status.latest.readings)).toContain('weight');

    const all = toolJson(await asOwner.callTool({ name: 'readings', arguments: { channel: 'weight' } })) as { channel: string; readings: { t: number }[] };
    expect(all.channel).toBe('weight');
    expect(all.readings.length).toBeGreaterThanOrEqual(3);
    const from = all.readings[1]!.t;
    const ranged = toolJson(await asOwner.callTool({ name: 'readings', arguments: { channel: 'weight', from, to: new Date(all.readings.at(-1)!.t).toISOString() } })) as { readings: { t: number }[] };
    expect(ranged.readings.length).toBeGreaterThanOrEqual(2);
    expect(ranged.readings.every((r) => r.t >= from)).toBe(true);
    expect(ranged.readings.length).toBeLessThan(all.readings.length);
    expect(toolText(await asOwner.callTool({ name: 'readings', arguments: { channel: 'weight', from: 'last tuesday' } })))
      .toMatchObject({ isError: true, text: expect.stringContaining('field "from": got "last tuesday"') as string });

    expect(toolJson(await asOwner.callTool({ name: 'decisions', arguments: {} }))).toEqual(expect.any(Object));
    expect(toolJson(await asOwner.callTool({ name: 'decisions', arguments: { scope: 'mesh' } }))).toEqual(expect.any(Array));
    expect(toolJson(await asOwner.callTool({ name: 'decisions', arguments: { scope: 'audit', limit: 3 } }))).toEqual(expect.any(Object));

    const answer = toolJson(await asOwner.callTool({ name: 'ask', arguments: { question: 'how heavy is the hive?' } })) as { answer: string };
    expect(answer.answer).toMatch(/\w/);

    const peers = toolJson(await asOwner.callTool({ name: 'peers', arguments: {} })) as { nodeId: string; mesh: Record<string, unknown> };
    expect(peers.nodeId).toBe(target.node.nodeId);
    expect(typeof peers.mesh).toBe('object');
  });

  it('reads the shared state, and writes it only owner-signed: the node refuses the keyless and the stranger, and counts them', async () => {
    const before = await counters();
    const set = { map: 'thresholds', key: 'mcp-test', value: 31 };

    const unsigned = toolText(await keyless.callTool({ name: 'shared_set', arguments: set }));
    expect(unsigned).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_UNSIGNED) as string });
    const notOwner = toolText(await asStranger.callTool({ name: 'shared_set', arguments: set }));
    expect(notOwner).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_NOT_OWNER) as string });
    // The same through the generic `command` tool.
    const viaCommand = toolText(await asStranger.callTool({ name: 'command', arguments: { name: 'shared/set', args: set } }));
    expect(viaCommand).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_NOT_OWNER) as string });
    expect((await shared()).thresholds?.['mcp-test']).toBeUndefined();

    expect(toolJson(await asOwner.callTool({ name: 'shared_set', arguments: set }))).toEqual(set);
    expect(toolJson(await asOwner.callTool({ name: 'shared_get', arguments: { map: 'thresholds', key: 'mcp-test' } }))).toBe(31);
    expect(toolJson(await asOwner.callTool({ name: 'command', arguments: { name: 'shared/set', args: { ...set, value: 32 } } }))).toMatchObject({ value: 32 });
    expect((await shared()).thresholds?.['mcp-test']).toBe(32);

    const after = await counters();
    expect((after['commands.auth.unsigned'] ?? 0) - (before['commands.auth.unsigned'] ?? 0)).toBe(1);
    expect((after['commands.auth.not_owner'] ?? 0) - (before['commands.auth.not_owner'] ?? 0)).toBe(2);
    expect((after['commands.auth.owner_signed'] ?? 0) - (before['commands.auth.owner_signed'] ?? 0)).toBe(2);
  });

  it('runs read commands through `command`, and refuses unknown commands and bad arguments with the registry\'s message', async () => {
    expect(toolJson(await asStranger.callTool({ name: 'command', arguments: { name: 'intents' } }))).toEqual(expect.any(Object));
    expect(toolText(await asOwner.callTool({ name: 'command', arguments: { name: 'no/such' } }))).toMatchObject({ isError: true, text: expect.stringContaining('unknown command "no/such"') as string });
    expect(toolText(await asOwner.callTool({ name: 'command', arguments: { name: 'readings/recent', args: { channel: 'Weight!' } } })))
      .toMatchObject({ isError: true, text: expect.stringContaining('field "channel"') as string });
  });

  it('serves the command list and a channel\'s readings as resources', async () => {
    const commands = await asOwner.readResource({ uri: 'apiary://commands' });
    const listed = JSON.parse((commands.contents[0] as { text: string }).text) as { name: string; write: boolean }[];
    expect(listed).toContainEqual(expect.objectContaining({ name: 'shared/set', write: true }));
    const readings = await asOwner.readResource({ uri: 'apiary://readings/weight' });
    expect((JSON.parse((readings.contents[0] as { text: string }).text) as { readings: unknown[] }).readings.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a replayed signed command, one signed too long ago, and one whose arguments were altered', async () => {
    const before = await counters();
    const args = { map: 'thresholds', key: 'replay', value: 1 };
    const signed = signCommand(owner, target.node.nodeId, 'shared/set', args);
    expect(await target.ask('shared/set', args, () => signed)).toMatchObject({ ok: true });
    expect(await target.ask('shared/set', args, () => signed)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_REPLAYED });

    const old = signCommand(owner, target.node.nodeId, 'shared/set', args, Date.now() - 10 * 60_000);
    expect(await target.ask('shared/set', args, () => old)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_REPLAYED, error: expect.stringContaining('clock') as string });

    const fresh = signCommand(owner, target.node.nodeId, 'shared/set', args);
    expect(await target.ask('shared/set', { ...args, value: 666 }, () => fresh)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_SIGNATURE_INVALID });
    // Signed for another node: worth nothing here.
    const elsewhere = signCommand(owner, 'aaaaaaaaaaaa', 'shared/set', args);
    expect(await target.ask('shared/set', args, () => elsewhere)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_SIGNATURE_INVALID });
    expect((await shared()).thresholds?.replay).toBe(1);

    const after = await counters();
    expect((after['commands.auth.replayed'] ?? 0) - (before['commands.auth.replayed'] ?? 0)).toBe(1);
    expect((after['commands.auth.stale'] ?? 0) - (before['commands.auth.stale'] ?? 0)).toBe(1);
    expect((after['commands.auth.bad_signature'] ?? 0) - (before['commands.auth.bad_signature'] ?? 0)).toBe(2);
  });

  it('answers malformed envelopes with a code naming the field, counts them, and runs nothing', async () => {
    const before = await counters();
    const args = { map: 'thresholds', key: 'malformed', value: 1 };
    const good = signCommand(owner, target.node.nodeId, 'shared/set', args);
    const malformed: unknown[] = ['owner', 42, { v: 2 }, { ...good, sig: 'short' }, { ...good, key: 'not a key' }, { ...good, extra: true }, { ...good, t: -5 }];
    for (const auth of malformed) {
      const reply = await target.ask('shared/set', args, () => auth);
      expect(reply, JSON.stringify(auth)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_SIGNATURE_INVALID, error: expect.stringContaining('malformed owner signature envelope') as string });
    }
    expect((await shared()).thresholds?.malformed).toBeUndefined();
    const after = await counters();
    expect((after['commands.auth.malformed'] ?? 0) - (before['commands.auth.malformed'] ?? 0)).toBe(malformed.length);
  });

  it('still answers plain loopback commands without an envelope, writes included, as before', async () => {
    expect(await target.ask('shared/set', { map: 'thresholds', key: 'plain', value: 2 })).toMatchObject({ ok: true });
    expect((await shared()).thresholds?.plain).toBe(2);
  });
});

describe('commands.writes: owner-signed', () => {
  let target: McpTestNode;
  afterAll(async () => {
    await target?.node.stop();
    if (target) await rm(target.dir, { recursive: true, force: true });
  });

  it('refuses plain writes without the owner signature, and still answers plain reads and signed writes', async () => {
    target = await startMcpTestNode('apiary-mcp-locked-', { commands: { writes: 'owner-signed' } });
    const owner = (await loadOrCreateKeyFile(path.join(target.dir, 'hive', 'owner.json'))).identity;
    const args = { map: 'thresholds', key: 'locked', value: 3 };
    expect(await target.ask('shared/set', args)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_UNSIGNED, error: expect.stringContaining('commands.writes') as string });
    expect(await target.ask('status')).toMatchObject({ ok: true });
    expect(((await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> }).thresholds?.locked).toBeUndefined();
    expect(await target.ask('shared/set', args, (nodeId) => signCommand(owner, nodeId, 'shared/set', args))).toMatchObject({ ok: true });
    expect(((await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> }).thresholds?.locked).toBe(3);
    const counters = ((await target.ask('status')).result as { counters: Record<string, number> }).counters;
    expect(counters['commands.auth.unsigned']).toBe(1);
    expect(counters['commands.auth.owner_signed']).toBe(1);
  }, 60_000);

  it('the CLI signs a write with --owner-key; without it, or with another owner\'s key, the node refuses', async () => {
    const port = String(target.node.brokerPort);
    const cli = (extra: string[]) => apiary(['shared', 'set', 'thresholds', 'cli', '5', '--port', port, '--node', target.node.nodeId, ...extra], target.dir);
    const unsigned = await cli([]);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toContain(ErrorCodes.COMMAND_UNSIGNED);
    const stranger = path.join(target.dir, 'stranger.json');
    await loadOrCreateKeyFile(stranger);
    expect((await cli(['--owner-key', stranger])).code).not.toBe(0);
    expect(((await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> }).thresholds?.cli).toBeUndefined();
    const signed = await cli(['--owner-key', path.join(target.dir, 'hive', 'owner.json')]);
    expect(signed, signed.stderr).toMatchObject({ code: 0 });
    expect(((await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> }).thresholds?.cli).toBe(5);
    // Reads take no key.
    expect((await apiary(['shared', 'get', '--port', port, '--node', target.node.nodeId], target.dir)).code).toBe(0);
  }, 60_000);
});
