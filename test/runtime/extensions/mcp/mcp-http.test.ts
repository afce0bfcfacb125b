/**
 * The node's own MCP endpoint (mcp.http): the SDK's Client over Streamable
 * HTTP against a real node, read-only (writes refused by the node and
 * counted), loopback Host only; and the SDK is never loaded by the bundle
 * unless MCP is used.
 */
import { readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { MCP_TOOL_NAMES } from '../../../../runtime/mcp/mcp-server.js';
import { BUILT_BUNDLE } from '../../../support/global-setup.js';
import { MAX_TOOLS_LIST_CHARS, startMcpTestNode, toolJson, toolText, type McpTestNode } from './mcp-support.js';

describe('mcp.http: the node\'s own endpoint', () => {
  let target: McpTestNode;
  let client: Client;
  let url: URL;

  beforeAll(async () => {
    target = await startMcpTestNode('apiary-mcp-http-', { mcp: { http: { enabled: true, port: 0 } } });
    const status = (await target.ask('status')).result as { mcp: { http: { url: string } } };
    url = new URL(status.mcp.http.url);
    client = new Client({ name: 'apiary-http-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await target?.node.stop();
    if (target) await rm(target.dir, { recursive: true, force: true });
  });

  it('lists the same tools within budget and answers reads in-process', async () => {
    const list = await client.listTools();
    expect(JSON.stringify(list).length).toBeLessThanOrEqual(MAX_TOOLS_LIST_CHARS);
    expect(list.tools.map((t) => t.name).sort()).toEqual([...MCP_TOOL_NAMES].sort());
    expect((toolJson(await client.callTool({ name: 'status', arguments: {} })) as { nodeId: string }).nodeId).toBe(target.node.nodeId);
    expect(toolJson(await client.callTool({ name: 'shared_get', arguments: {} }))).toEqual(expect.any(Object));
  });

  it('refuses writes (they need the owner\'s signature, which only apiary mcp sends), and counts them', async () => {
    const refused = toolText(await client.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'http', value: 1 } }));
    expect(refused).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_UNSIGNED) as string });
    const viaCommand = toolText(await client.callTool({ name: 'command', arguments: { name: 'sim/swarm' } }));
    expect(viaCommand).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.COMMAND_UNSIGNED) as string });
    const shared = (await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> };
    expect(shared.thresholds?.http).toBeUndefined();
    const counters = ((await target.ask('status')).result as { counters: Record<string, number> }).counters;
    expect(counters['mcp.http.writes_refused']).toBe(2);
  });

  it('refuses a request whose Host is not loopback (DNS rebinding), and counts it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { host: 'evil.example:80', 'content-type': 'application/json' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end('{}');
    });
    expect(status).toBe(403);
    const counters = ((await target.ask('status')).result as { counters: Record<string, number> }).counters;
    expect(counters['mcp.http.refused_host']).toBe(1);
  });

  it('listens on loopback only: another host is refused by the config, naming the field', () => {
    expect(() => parseConfig({ mcp: { http: { enabled: true, host: '0.0.0.0' } } })).toThrow(/mcp\.http\.host.*loopback/s);
  });
});

describe('the bundle', () => {
  it('never imports the MCP SDK at the top level: only apiary mcp and mcp.http load it', async () => {
    // The bundle is CommonJS (runtime/cli/bundle.ts): a top-level import would be a `var ... = require(...)` run at load.
    const bundle = await readFile(BUILT_BUNDLE, 'utf8');
    const requires = [...bundle.matchAll(/(.{0,40})require\("@modelcontextprotocol\/[^"]+"\)/g)];
    expect(requires.length).toBeGreaterThan(0);
    for (const [, before] of requires) expect(before).toMatch(/Promise\.resolve\(\)\.then\(\(\)=>__toESM\($/);
  });
});
