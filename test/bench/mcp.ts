/**
 * `npm run bench -- --only mcp` (issue 15): the size of the MCP `tools/list`
 * answer in characters (what an assistant pays for in context at every
 * session; the test fails past 6,000), the tool count, the longest tool name,
 * and the compiled `apiary mcp` on stdio: spawn to tools/list answered, and
 * its memory then (it runs on the owner's machine, not the board). Listing
 * asks no node, so no node runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { allNodeCommands } from '../../runtime/apps/index.js';
import { mcpServerFactory } from '../../runtime/mcp/mcp-server.js';
import { memory } from './proc.js';
import { NODE_MAIN } from './processes.js';
import { summarize } from './stats.js';
import type { Row } from './table.js';

export interface McpResults {
  listChars: number;
  tools: number;
  longestName: number;
  /** Per stdio run: spawn -> tools/list answered, and the process's VmRSS then. */
  stdio: { listedMs: number; rssKiB: number }[];
}

const MAX_LIST_CHARS = 6000;

async function inProcessList(): Promise<{ tools: { name: string }[] }> {
  const server = (await mcpServerFactory({ registry: allNodeCommands(), version: 'bench', callNode: () => Promise.reject(new Error('tools/list asks no node')) }))();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'apiary-bench', version: '1.0.0' });
  await client.connect(clientSide);
  try {
    return await client.listTools();
  } finally {
    await client.close();
    await server.close();
  }
}

export async function measureMcp(runs: number, progress: (line: string) => void): Promise<McpResults> {
  const list = await inProcessList();
  const stdio: McpResults['stdio'] = [];
  const cwd = await mkdtemp(path.join(os.tmpdir(), 'apiary-bench-mcp-'));
  try {
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
      const transport = new StdioClientTransport({ command: process.execPath, args: [NODE_MAIN, 'mcp', '--port', '1'], cwd, env, stderr: 'ignore' });
      const client = new Client({ name: 'apiary-bench', version: '1.0.0' });
      await client.connect(transport);
      await client.listTools();
      const listedMs = performance.now() - started;
      const rssKiB = transport.pid ? (await memory(transport.pid)).rssKiB : Number.NaN;
      await client.close();
      stdio.push({ listedMs, rssKiB });
    }
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
  progress(`mcp: tools/list is ${JSON.stringify(list).length} characters`);
  return { listChars: JSON.stringify(list).length, tools: list.tools.length, longestName: Math.max(...list.tools.map((t) => t.name.length)), stdio };
}

export function mcpRows(m: McpResults): Row[] {
  const section = 'MCP (apiary mcp, the owner\'s machine): the tool list an assistant loads, and the stdio server';
  const one = (value: number) => summarize([value]);
  return [
    { section, metric: 'tools/list answer', unit: 'chars', summary: one(m.listChars), target: { on: 'median', max: MAX_LIST_CHARS, text: `≤ ${MAX_LIST_CHARS}` } },
    { section, metric: 'tools', unit: 'count', summary: one(m.tools), target: { on: 'median', max: 8, text: '≤ 8' } },
    { section, metric: 'longest tool name', unit: 'chars', summary: one(m.longestName), target: { on: 'median', max: 40, text: '≤ 40' } },
    { section, metric: 'apiary mcp: spawn -> tools/list answered', unit: 'ms', summary: summarize(m.stdio.map((r) => r.listedMs)) },
    { section, metric: 'apiary mcp: VmRSS after tools/list', unit: 'MB', summary: summarize(m.stdio.map((r) => r.rssKiB / 1024)) },
  ];
}
