/**
 * `apiary owner mcp-token`, run as the CLI, makes a token that a node
 * listening on every address over HTTPS (mcp.http.tls) accepts through the
 * SDK's client, and a write token from it writes; plain HTTP to that port
 * gets nowhere. And the schema keeps an endpoint off the network unless it
 * has both tokens and TLS, saying which field to set.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client, StreamableHTTPClientTransport, type FetchLike } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { verifyMcpToken } from '../../../../runtime/mcp/mcp-token.js';
import { apiary } from '../../../support/cli.js';
import { startMcpTestNode, toolJson, type McpTestNode } from '../mcp/mcp-support.js';
import { post } from './token-support.js';

/** fetch over node:https trusting one self-signed certificate (the global fetch takes no CA). */
function fetchTrusting(ca: string): FetchLike {
  return async (input, init) => {
    const req = new Request(input, init);
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.from(await req.arrayBuffer());
    return new Promise<Response>((resolve, reject) => {
      const out = httpsRequest(req.url, { method: req.method, headers: Object.fromEntries(req.headers), ca }, (res) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(name, value);
        const empty = [204, 205, 304].includes(res.statusCode ?? 0);
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream), { status: res.statusCode ?? 0, headers }));
      });
      req.signal.addEventListener('abort', () => out.destroy());
      out.on('error', reject);
      out.end(body);
    });
  };
}

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}

describe.skipIf(!openssl)('apiary owner mcp-token, and a node on every address over HTTPS (skipped without openssl on PATH)', () => {
  let dir: string;
  let target: McpTestNode;
  let url: URL;
  let nodeId: string;
  let ca: string;
  let client: Client | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mcp-token-cli-'));
    nodeId = (await loadOrCreateIdentity(path.join(dir, 'hive'))).identity.nodeId;
    await loadOrCreateKeyFile(path.join(dir, 'hive', 'owner.json'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    ca = await readFile(cert, 'utf8');
    target = await startMcpTestNode('', { mcp: { http: { enabled: true, port: 0, host: '0.0.0.0', auth: 'owner-token', tls: { certificateFile: cert, keyFile: key } } } }, dir);
    const status = (await target.ask('status')).result as { mcp: { http: { url: string; tls: boolean } } };
    expect(status.mcp.http.url).toMatch(/^https:\/\/0\.0\.0\.0:\d+\/mcp$/);
    url = new URL(status.mcp.http.url.replace('0.0.0.0', '127.0.0.1'));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await target?.node.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('makes a write token the node accepts over HTTPS, and that writes', async () => {
    const run = await apiary(['owner', 'mcp-token', '--key-file', 'hive/owner.json', '--node', nodeId, '--scope', 'write', '--expires', '1h', '--json'], dir);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const made = JSON.parse(run.stdout) as { token: string; id: string; node: string; scope: string; expires: string };
    expect(made).toMatchObject({ node: nodeId, scope: 'write' });
    expect(Date.parse(made.expires) - Date.now()).toBeGreaterThan(50 * 60_000);
    client = new Client({ name: 'apiary-cli-token-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { fetch: fetchTrusting(ca), requestInit: { headers: { authorization: `Bearer ${made.token}` } } }));
    toolJson(await client.callTool({ name: 'shared_set', arguments: { map: 'thresholds', key: 'fromCli', value: 3 } }));
    expect(((await target.ask('shared/get')).result as { thresholds?: Record<string, unknown> }).thresholds?.fromCli).toBe(3);
  });

  it('prints the token with its id, and how to use and revoke it', async () => {
    const run = await apiary(['owner', 'mcp-token', '--key-file', 'hive/owner.json', '--node', nodeId], dir);
    expect(run.code).toBe(0);
    const [token = '', ...rest] = run.stdout.split('\n');
    const owner = (await loadOrCreateKeyFile(path.join(dir, 'hive', 'owner.json'))).identity.publicKey;
    const verdict = verifyMcpToken(token, { nodeId, ownerKey: owner, revoked: new Set(), now: Date.now() });
    expect(verdict).toMatchObject({ ok: true, body: { scope: 'read' } });
    if (!verdict.ok) return;
    expect(verdict.body.exp - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(rest.join('\n')).toContain(`add ${verdict.body.id} to mcp.http.revokedTokens`);
    expect(rest.join('\n')).toContain('Authorization: Bearer');
  });

  it('refuses a bad scope, expiry or node id, naming the option', async () => {
    const scope = await apiary(['owner', 'mcp-token', '--key-file', 'hive/owner.json', '--node', nodeId, '--scope', 'admin'], dir);
    expect(scope.code).not.toBe(0);
    expect(scope.stderr).toMatch(/--scope: expected "read" or "write"/);
    const expires = await apiary(['owner', 'mcp-token', '--key-file', 'hive/owner.json', '--node', nodeId, '--expires', '10y'], dir);
    expect(expires.stderr).toMatch(/--expires: expected a duration/);
    const node = await apiary(['owner', 'mcp-token', '--key-file', 'hive/owner.json', '--node', 'board-1'], dir);
    expect(node.stderr).toMatch(/--node: "board-1" is not a node id/);
  });

  it('is not served over plain HTTP on its port', async () => {
    await expect(post(url, {})).rejects.toThrow();
  });
});

describe('mcp.http config', () => {
  it('refuses a non-loopback host without tokens and TLS, naming the fields to set', () => {
    expect(() => parseConfig({ mcp: { http: { enabled: true, host: '0.0.0.0' } } })).toThrow(/field "mcp\.http\.host".*not a loopback address.*mcp\.http\.auth: owner-token and mcp\.http\.tls/s);
    expect(() => parseConfig({ mcp: { http: { enabled: true, host: '192.168.1.20', auth: 'owner-token' } } })).toThrow(/field "mcp\.http\.host".*needs mcp\.http\.tls \(certificateFile, keyFile\)/s);
    expect(() => parseConfig({ mcp: { http: { host: 'board.local', auth: 'owner-token' } } })).toThrow(/mcp\.http\.host.*expected an IP address/s);
    expect(() => parseConfig({ mcp: { http: { auth: 'owner-token', revokedTokens: ['short'] } } })).toThrow(/mcp\.http\.revokedTokens\.0.*token id/s);
  });

  it('takes a loopback host with or without tokens, and any address with both', () => {
    expect(parseConfig({ mcp: { http: { host: '127.0.0.2' } } }).mcp.http.auth).toBe('none');
    expect(parseConfig({ mcp: { http: { host: '::1', auth: 'owner-token' } } }).mcp.http.host).toBe('::1');
    const open = parseConfig({ mcp: { http: { host: '0.0.0.0', auth: 'owner-token', tls: { certificateFile: 'c.pem', keyFile: 'k.pem' } } } });
    expect(open.mcp.http).toMatchObject({ host: '0.0.0.0', auth: 'owner-token', revokedTokens: [] });
  });
});
