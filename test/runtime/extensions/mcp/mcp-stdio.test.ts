/**
 * The compiled `apiary mcp` as an MCP client runs it: a child process on
 * stdio (stdout the JSON-RPC channel, anything said on stderr), asking a real
 * node over MQTT. The SDK's own Client over StdioClientTransport lists the
 * tools within budget and calls each; the node takes writes signed with its
 * owner key and refuses them from a server without one or with another key.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { MCP_TOOL_NAMES } from '../../../../runtime/mcp/mcp-server.js';
import { apiary } from '../../../support/cli.js';
import { BUILT_CLI } from '../../../support/global-setup.js';
import { MAX_TOOLS_LIST_CHARS, startMcpTestNode, toolJson, toolText, waitForReadings, type McpTestNode } from './mcp-support.js';

describe('apiary mcp on stdio', () => {
  let target: McpTestNode;
  let cwd: string;
  const clients: Client[] = [];
  const stderr: string[] = [];

  /** `apiary mcp` for this node, as an MCP client config would start it. */
  const serve = async (...extra: string[]): Promise<Client> => {
    const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BUILT_CLI, 'mcp', '--port', String(target.node.brokerPort), '--node', target.node.nodeId, '--timeout', '20000', ...extra],
      cwd, env, stderr: 'pipe',
    });
    (transport.stderr as Readable | null)?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
    const client = new Client({ name: 'apiary-stdio-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    target = await startMcpTestNode('apiary-mcp-stdio-');
    cwd = await mkdtemp(path.join(os.tmpdir(), 'apiary-mcp-cwd-'));
    await loadOrCreateKeyFile(path.join(cwd, 'stranger.json'));
    await waitForReadings(target, 2);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await target?.node.stop();
    if (target) await rm(target.dir, { recursive: true, force: true });
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  it('lists the tools within budget and answers every tool from the node, writes signed with the owner key', async () => {
    const client = await serve('--owner-key', path.join(target.dir, 'hive', 'owner.json'));
    const list = await client.listTools();
    expect(JSON.stringify(list).length).toBeLessThanOrEqual(MAX_TOOLS_LIST_CHARS);
    expect(list.tools.map((t) => t.name).sort()).toEqual([...MCP_TOOL_NAMES].sort());

    const calls: Record<(typeof MCP_TOOL_NAMES)[number], Record<string, unknown>> = {
      status: {},
      readings: { channel: 'weight', limit: 5 },
      decisions: { scope: 'mesh' },
      ask: { question: 'how is the hive?' },
      peers: {},
      shared_get: { map: 'thresholds' },
      shared_set: { map: 'thresholds', key: 'stdio', value: 7 },
      command: { name: 'intents' },
    };
    for (const [name, args] of Object.entries(calls)) {
      const result = await client.callTool({ name, arguments: args });
      expect(toolText(result).isError, `${name}: ${toolText(result).text}`).toBe(false);
    }
    expect((toolJson(await client.callTool({ name: 'status', arguments: {} })) as { nodeId: string }).nodeId).toBe(target.node.nodeId);
    expect(toolJson(await client.callTool({ name: 'shared_get', arguments: { map: 'thresholds', key: 'stdio' } }))).toBe(7);
    expect(stderr.join('')).toContain('writes are signed with owner key');
  });

  it('offers writes the node refuses without the owner key, or with another key', async () => {
    const keyless = await serve();
    expect(toolText(await keyless.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'stdio', value: 8 } })))
      .toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_UNSIGNED) as string });
    const stranger = await serve('--owner-key', 'stranger.json');
    expect(toolText(await stranger.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'stdio', value: 9 } })))
      .toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_NOT_OWNER) as string });
    // Reads need no key.
    expect(toolText(await keyless.callTool({ name: 'status', arguments: {} })).isError).toBe(false);
    const shared = (await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> };
    expect(shared.thresholds?.stdio).toBe(7);
  });

  it('refuses an owner key file that is not there, naming the flag', async () => {
    const run = await apiary(['mcp', '--port', String(target.node.brokerPort), '--owner-key', 'missing.json'], cwd);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(ErrorCodes.OWNER_KEY_MISSING);
    expect(run.stderr).toContain('--owner-key');
    expect(run.stdout).toBe('');
  });
});
