/** A real node for the MCP tests (simulated hive, real aedes broker, mesh on), and MCP clients that reach it. */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { pino } from 'pino';
import { extensionsFor, allNodeCommands } from '../../../../runtime/apps/index.js';
import { requestNode, type NodeReply } from '../../../../runtime/cli/node-request.js';
import { signCommand } from '../../../../runtime/commands/command-auth.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { NodeIdentity } from '../../../../runtime/identity/identity.js';
import { mcpServerFactory } from '../../../../runtime/mcp/mcp-server.js';
import { waitFor } from '../../../support/mesh-node.js';

/** What users of IoT MCP servers complain about: keep the list small (issue 15). */
export const MAX_TOOLS_LIST_CHARS = 6000;
export const MAX_TOOL_NAME = 40;

export interface McpTestNode {
  dir: string;
  node: ApiaryNode;
  url: string;
  /** One registry command over MQTT, as the CLI sends it. */
  ask(command: string, args?: Record<string, unknown>, auth?: (nodeId: string) => unknown): Promise<NodeReply>;
}

/** `dir`: a folder made beforehand (its hive/ may already hold the node's and owner's keys); default a new one. */
export async function startMcpTestNode(prefix: string, extra: { commands?: { writes: 'any' | 'owner-signed' }; mcp?: { http: Record<string, unknown> } } = {}, made?: string): Promise<McpTestNode> {
  const dir = made ?? await mkdtemp(path.join(os.tmpdir(), prefix));
  const config = parseConfig({
    node: { dataDir: path.join(dir, 'hive'), name: 'MCP hive' },
    broker: { port: 0, host: '127.0.0.1' },
    homeAssistant: { enabled: false },
    device: {
      simulation: { speed: 120 },
      sensors: { temperature: { interval: '1m' }, humidity: { interval: '1m' }, weight: { interval: '1m' }, sound: { interval: '1m' } },
    },
    mesh: { commitInterval: '20ms' },
    ...extra,
  });
  const node = new ApiaryNode(config, pino({ level: 'silent' }), extensionsFor(config));
  await node.start();
  const url = `mqtt://127.0.0.1:${node.brokerPort}`;
  return {
    dir, node, url,
    ask: (command, args, auth) => requestNode({ url, topicPrefix: 'apiary', nodeId: node.nodeId, command, ...(args ? { args } : {}), ...(auth ? { auth } : {}), timeoutMs: 20_000 }),
  };
}

/** Waits until the node has stored `count` weight readings (the simulated hive at 120x: a few seconds). */
export async function waitForReadings(target: McpTestNode, count: number): Promise<void> {
  await waitFor(async () => {
    const reply = await target.ask('readings/recent', { channel: 'weight' });
    return reply.ok && (reply.result as { readings: unknown[] }).readings.length >= count;
  }, 60_000, () => `${count} weight readings`);
}

/** An in-process SDK client on a server built as `apiary mcp` builds it, signing writes with `owner` (or marking them unsigned). */
export async function inProcessClient(target: McpTestNode, owner: NodeIdentity | undefined): Promise<Client> {
  const server = (await mcpServerFactory({
    registry: allNodeCommands(),
    version: 'test',
    callNode: (command, args, { write }) => target.ask(command, args, write ? (nodeId) => (owner ? signCommand(owner, nodeId, command, args) : { v: 1 }) : undefined),
  }))();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'apiary-test', version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

/** A tool result's text, and whether it is an error. */
export function toolText(result: unknown): { isError: boolean; text: string } {
  const r = result as { isError?: boolean; content?: { type: string; text?: string }[] };
  return { isError: r.isError === true, text: (r.content ?? []).map((c) => c.text ?? '').join('') };
}

export function toolJson(result: unknown): unknown {
  const { isError, text } = toolText(result);
  if (isError) throw new Error(`tool error: ${text}`);
  return JSON.parse(text) as unknown;
}
