/**
 * The node's command registry as MCP: eight generic, parameterised tools
 * (never one per sensor or entity; IoT MCP servers with 100+ tools and
 * 400 KB tool lists are what their users complain about) and resources for
 * bulk data. Every tool call becomes registry commands sent to a node by
 * `callNode`; the `command` tool runs any other registry command (tasks/*,
 * pay/*, models/*...) by name, checked against the registry's own schema.
 * The SDK is imported only in mcpServerFactory: a static import would be
 * hoisted to the top of the one-file bundle and load it at every `apiary`
 * start, a running node included (RAM on a 512 MB board).
 */
import type * as McpSdk from '@modelcontextprotocol/server';
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { checkArgs, jsonSchemaOf, type CommandRegistry } from '../commands/command-registry.js';
import { ErrorCodes, isApiaryError } from '../errors.js';
import type { NodeReply } from '../cli/node-request.js';

/** Sends one registry command to the node; `write` commands go owner-signed (or marked as wanting to be). */
export type CallNode = (command: string, args: Record<string, unknown>, options: { write: boolean }) => Promise<NodeReply>;

export interface ApiaryMcpOptions {
  registry: CommandRegistry;
  callNode: CallNode;
  version: string;
}

/** The tools' names, for tests and the benchmark: at most 8, each at most 40 characters. */
export const MCP_TOOL_NAMES = ['status', 'readings', 'decisions', 'ask', 'peers', 'shared_get', 'shared_set', 'command'] as const;

/** Commands a dedicated tool covers; `command` lists the others. */
const COVERED = new Set(['status', 'readings/recent', 'mesh/decisions', 'decisions/audit', 'ask', 'shared/get', 'shared/set']);

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;
/** A refusal the node (or this server) answered: a tool error with its code, which the model reads. */
class Refusal extends Error {
  constructor(readonly code: string, message: string) { super(message); }
}

/** Plain (no date-time pattern): the schema is sent at every session; the handler checks the value. */
const time = z.union([z.number(), z.string()]);

/** A time as ms since 1970, or a refusal naming the field and the forms it takes. */
function timeOf(field: string, value: number | string | undefined, otherwise: number): number {
  if (value === undefined) return otherwise;
  const t = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(t)) throw new Refusal(ErrorCodes.COMMAND_INVALID, `field "${field}": got ${JSON.stringify(value)}; expected ms since 1970 or an ISO 8601 time like 2026-07-01T12:00:00Z`);
  return t;
}

const text = (value: unknown): CallToolResult => ({ content: [{ type: 'text', text: JSON.stringify(value) ?? 'null' }] });
const refusal = (code: string, message: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text: `${code}: ${message}` }] });

type Sdk = typeof McpSdk;

/** Loads the SDK once, then makes a server per call (serveStdio and the HTTP handler want a synchronous factory). */
export async function mcpServerFactory(options: ApiaryMcpOptions): Promise<(overrides?: Partial<ApiaryMcpOptions>) => McpServer> {
  const sdk = await import('@modelcontextprotocol/server');
  return (overrides) => createApiaryMcpServer(sdk, { ...options, ...overrides });
}

function createApiaryMcpServer({ McpServer, ResourceTemplate }: Sdk, options: ApiaryMcpOptions): McpServer {
  const { registry, callNode } = options;
  const server = new McpServer({ name: 'apiary', version: options.version }, { capabilities: { tools: {}, resources: {} } });

  /** A registry command's result, or a Refusal with the node's code (refusals are tool errors the model reads). */
  async function run(command: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const spec = registry.get(command);
    const reply = await callNode(command, args, { write: spec?.write ?? true });
    if (!reply.ok) throw new Refusal(reply.code ?? ErrorCodes.COMMAND_INVALID, reply.error ?? `node ${reply.nodeId} refused "${command}"`);
    return reply.result;
  }

  /** Runs a tool body; a refusal or a node that does not answer is a tool error with its code, not a protocol error. */
  const tool = <A>(body: (args: A) => Promise<unknown>) => async (args: A): Promise<CallToolResult> => {
    try {
      return text(await body(args));
    } catch (err) {
      if (err instanceof Refusal) return refusal(err.code, err.message);
      if (isApiaryError(err)) return refusal(err.code, err.hint ? `${err.message} (${err.hint})` : err.message);
      throw err;
    }
  };

  server.registerTool('status', {
    description: "The node's latest readings, model outputs and decisions, uptime, storage, counters, mesh and models.",
    inputSchema: z.object({}),
    annotations: READ,
  }, tool(() => run('status')));

  server.registerTool('readings', {
    description: "One channel's stored readings, oldest first, optionally within a time range [from, to].",
    inputSchema: z.object({
      channel: z.string().describe('e.g. weight, temperature (see status.latest.readings)'),
      from: time.optional().describe('ms or ISO 8601'),
      to: time.optional(),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    annotations: READ,
  }, tool(async ({ channel, from, to, limit }) => {
    if (from === undefined && to === undefined) return run('readings/recent', { channel, limit });
    // A range is found in the stored stream, however old (readings/range), not only among the recent.
    const lo = timeOf('from', from, 0);
    const hi = timeOf('to', to, Number.MAX_SAFE_INTEGER);
    return run('readings/range', { channel, from: lo, to: hi, limit });
  }));

  server.registerTool('decisions', {
    description: "Decisions: this node's latest (own), other nodes' (mesh), or an audit that re-runs the models behind recent ones (audit).",
    inputSchema: z.object({
      scope: z.enum(['own', 'mesh', 'audit']).default('own'),
      origin: z.string().optional().describe('audit: only this node id'),
      limit: z.number().int().min(1).max(200).default(20),
    }),
    annotations: READ,
  }, tool(async ({ scope, origin, limit }) => {
    if (scope === 'mesh') return run('mesh/decisions', { limit });
    if (scope === 'audit') return run('decisions/audit', { limit, ...(origin !== undefined ? { origin } : {}) });
    const status = await run('status') as { latest?: { decisions?: unknown } };
    return status.latest?.decisions ?? {};
  }));

  server.registerTool('ask', {
    description: 'Ask the node a question in English ("how is the hive?"); it answers in words from its own data, with sources.',
    inputSchema: z.object({ question: z.string().min(1).max(500) }),
    annotations: READ,
  }, tool(({ question }) => run('ask', { question })));

  server.registerTool('peers', {
    description: "The node's mesh: its peers, links, feeds and shared-state digest.",
    inputSchema: z.object({}),
    annotations: READ,
  }, tool(async () => {
    const status = await run('status') as { nodeId?: string; mesh?: unknown };
    return { nodeId: status.nodeId, mesh: status.mesh ?? 'the mesh is off on this node (mesh.enabled)' };
  }));

  server.registerTool('shared_get', {
    description: 'The apiary-wide shared state (members, thresholds, catalogue...), or one map or key of it.',
    inputSchema: z.object({ map: z.string().optional(), key: z.string().optional() }),
    annotations: READ,
  }, tool(async ({ map, key }) => {
    const shared = await run('shared/get') as Record<string, Record<string, unknown> | undefined>;
    if (map === undefined) return shared;
    const values = shared[map] ?? {};
    return key === undefined ? values : (values[key] ?? null);
  }));

  server.registerTool('shared_set', {
    description: "Set one fact in the shared state; it spreads to every node. Owner only (signed with the owner key).",
    inputSchema: z.object({ map: z.string().describe('e.g. thresholds'), key: z.string(), value: z.unknown().describe('any JSON') }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  }, tool(({ map, key, value }) => run('shared/set', { map, key, value })));

  const others = registry.list().filter((c) => !COVERED.has(c.name)).map((c) => `${c.name}${c.write ? '*' : ''}`);
  server.registerTool('command', {
    description: `Run another node command by name (* = write, owner only): ${others.join(', ')}. Arguments: resource apiary://commands.`,
    inputSchema: z.object({ name: z.string(), args: z.record(z.string(), z.unknown()).optional() }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  }, tool(async ({ name, args }) => {
    const spec = registry.get(name);
    if (!spec) throw new Refusal(ErrorCodes.COMMAND_INVALID, `unknown command "${name}": see the resource apiary://commands`);
    // The registry's own check, before anything is sent (and signed).
    const checked = checkArgs(spec, args ?? {});
    if (!checked.ok) throw new Refusal(ErrorCodes.COMMAND_INVALID, checked.error);
    return run(name, args ?? {});
  }));

  server.registerResource('commands', 'apiary://commands', {
    description: "Every node command: name, description, write, arguments as JSON Schema.",
    mimeType: 'application/json',
  }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(registry.list().map((c) => ({ name: c.name, description: c.description, write: c.write, args: jsonSchemaOf(c) }))) }],
  }));

  server.registerResource('readings', new ResourceTemplate('apiary://readings/{channel}', { list: undefined }), {
    description: "A channel's last 500 stored readings, as JSON.",
    mimeType: 'application/json',
  }, async (uri, variables) => {
    const channel = String(variables.channel);
    const reply = await callNode('readings/recent', { channel, limit: 500 }, { write: false });
    if (!reply.ok) throw new Error(`${reply.code ?? ErrorCodes.COMMAND_INVALID}: ${reply.error ?? `node ${reply.nodeId} refused readings/recent`}`);
    return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(reply.result) }] };
  });

  return server;
}
