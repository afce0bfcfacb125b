/**
 * mcp.http.auth: owner-token against a real node, with the SDK's own client
 * over Streamable HTTP: no token, or a forged, altered, expired, other-node
 * or revoked one, is refused with 401 and APIARY_MCP_TOKEN_INVALID and
 * counted by reason; a read token reads but is refused writes; a write token
 * writes, as the owner.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../../runtime/canonical-json.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile, type NodeIdentity } from '../../../../runtime/identity/identity.js';
import { MCP_TOKEN_PREFIX, signMcpToken } from '../../../../runtime/mcp/mcp-token.js';
import { startMcpTestNode, toolJson, toolText, type McpTestNode } from '../mcp/mcp-support.js';
import { connect, post } from './token-support.js';

const HOUR = 3_600_000;

/** The token with its body changed and its signature kept. */
function altered(token: string, change: Record<string, unknown>): string {
  const [body, sig] = token.slice(MCP_TOKEN_PREFIX.length).split('.');
  const json = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${MCP_TOKEN_PREFIX}${Buffer.from(canonicalJson({ ...json, ...change })).toString('base64url')}.${sig}`;
}

describe('mcp.http with owner tokens', () => {
  let dir: string;
  let target: McpTestNode;
  let url: URL;
  let owner: NodeIdentity;
  let nodeId: string;
  let revoked: string;
  const clients: Client[] = [];

  const counters = async () => ((await target.ask('status')).result as { counters: Record<string, number> }).counters;

  beforeAll(async () => {
    // The owner's key and the node's identity exist before the node starts, so a token can be revoked in its config.
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mcp-token-'));
    nodeId = (await loadOrCreateIdentity(path.join(dir, 'hive'))).identity.nodeId;
    owner = (await loadOrCreateKeyFile(path.join(dir, 'hive', 'owner.json'))).identity;
    const toRevoke = signMcpToken(owner, { node: nodeId, scope: 'write', lifetimeMs: HOUR });
    revoked = toRevoke.token;
    target = await startMcpTestNode('', { mcp: { http: { enabled: true, port: 0, auth: 'owner-token', revokedTokens: [toRevoke.body.id] } } }, dir);
    expect(target.node.nodeId).toBe(nodeId);
    const status = (await target.ask('status')).result as { mcp: { http: { url: string; auth: string; tls: boolean } } };
    expect(status.mcp.http).toMatchObject({ auth: 'owner-token', tls: false });
    url = new URL(status.mcp.http.url);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    await target?.node.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a request without a token: 401, a JSON-RPC error with a stable code, counted; the SDK client cannot connect', async () => {
    const refused = await post(url, {});
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(JSON.parse(refused.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32001, message: expect.stringContaining(ErrorCodes.MCP_TOKEN_INVALID) as string, data: { code: ErrorCodes.MCP_TOKEN_INVALID, reason: 'missing' } } });
    await expect(connect(url, undefined)).rejects.toThrow();
    expect((await counters())['mcp.http.auth.missing']).toBe(2);
  });

  it('refuses forged, altered, expired, other-node, revoked and malformed tokens, each counted by reason', async () => {
    const stranger = (await loadOrCreateKeyFile(path.join(dir, 'stranger.json'))).identity;
    const read = signMcpToken(owner, { node: nodeId, scope: 'read', lifetimeMs: HOUR }).token;
    const cases: [string, string][] = [
      [signMcpToken(stranger, { node: nodeId, scope: 'write', lifetimeMs: HOUR }).token, 'bad_signature'],
      [altered(read, { scope: 'write' }), 'bad_signature'],
      [altered(read, { exp: Date.now() + 300 * 86_400_000 }), 'bad_signature'],
      [signMcpToken(owner, { node: nodeId, scope: 'read', lifetimeMs: HOUR, now: Date.now() - 3 * HOUR }).token, 'expired'],
      [signMcpToken(owner, { node: 'abcdefghijkl', scope: 'read', lifetimeMs: HOUR }).token, 'other_node'],
      [revoked, 'revoked'],
      [`${read}x`, 'malformed'],
      [read.replace(MCP_TOKEN_PREFIX, 'apiary-mcp2.'), 'malformed'],
    ];
    for (const [token, reason] of cases) {
      const refused = await post(url, { authorization: `Bearer ${token}` });
      expect(refused.status, reason).toBe(401);
      expect((JSON.parse(refused.body) as { error: { data: unknown } }).error.data).toEqual({ code: ErrorCodes.MCP_TOKEN_INVALID, reason });
    }
    expect((await post(url, { authorization: `Basic ${read}` })).status).toBe(401);
    await expect(connect(url, revoked)).rejects.toThrow();
    const seen = await counters();
    expect(seen).toMatchObject({ 'mcp.http.auth.bad_signature': 3, 'mcp.http.auth.expired': 1, 'mcp.http.auth.other_node': 1, 'mcp.http.auth.revoked': 2, 'mcp.http.auth.malformed': 3 });
  });

  it('a read token lists the tools and reads, and is refused writes (counted)', async () => {
    const client = await connect(url, signMcpToken(owner, { node: nodeId, scope: 'read', lifetimeMs: HOUR }).token);
    clients.push(client);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('shared_set');
    expect((toolJson(await client.callTool({ name: 'status', arguments: {} })) as { nodeId: string }).nodeId).toBe(nodeId);
    const refused = toolText(await client.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'byRead', value: 1 } }));
    expect(refused).toMatchObject({ isError: true, text: expect.stringContaining(ErrorCodes.MCP_TOKEN_SCOPE) as string });
    const shared = (await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> };
    expect(shared.thresholds?.byRead).toBeUndefined();
    expect((await counters())['mcp.http.writes_refused']).toBe(1);
  });

  it('a write token runs a write tool, as the owner', async () => {
    const client = await connect(url, signMcpToken(owner, { node: nodeId, scope: 'write', lifetimeMs: HOUR }).token);
    clients.push(client);
    toolJson(await client.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'byWrite', value: 7 } }));
    const shared = (await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> };
    expect(shared.thresholds?.byWrite).toBe(7);
    expect((await counters())['mcp.http.writes']).toBe(1);
  });

  it('refuses headers past its bound before reading them', async () => {
    const refused = await post(url, { authorization: `Bearer ${'a'.repeat(10_000)}` });
    expect(refused.status).toBe(431);
  });
});
