/**
 * The node's own MCP endpoint (mcp.http): the same eight tools as
 * `apiary mcp`, served over Streamable HTTP, with the registry run
 * in-process. The SDK is imported only when the endpoint is on (RAM on a
 * 512 MB board).
 *
 * auth none: loopback only (Host and Origin checked against DNS rebinding)
 * and read-only: writes are refused (APIARY_COMMAND_UNSIGNED) and counted.
 * auth owner-token: every request shows an owner-signed token (token-gate.ts);
 * a write-scope token runs write tools as the owner, a read-scope one is
 * refused them (APIARY_MCP_TOKEN_SCOPE). Off loopback the config demands
 * TLS too (mcp.http.tls), so a bearer token never crosses a LAN in clear.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { ErrorCodes } from '../../errors.js';
import { APIARY_VERSION } from '../../core/node-status.js';
import type { CallNode } from '../../mcp/mcp-server.js';
import { readBrokerTls } from '../../mesh/create-mesh.js';
import { McpTokenGate } from './token-gate.js';

/** Requests larger than this are refused before parsing (a tool call is a few hundred bytes). */
const MAX_BODY_BYTES = 64 * 1024;
/** All request headers together (a token is ~300 bytes); more is answered 431 by Node before we see it. */
const MAX_HEADER_BYTES = 8 * 1024;
/** Open connections at once (an assistant holds one or two); more are closed by Node. */
const MAX_CONNECTIONS = 64;

export function createMcpHttp(config: ApiaryConfig): Extension {
  let server: Server | HttpsServer | undefined;
  let close: (() => Promise<void>) | undefined;
  let url: string | undefined;
  const { host, port, auth, tls } = config.mcp.http;
  return {
    name: 'mcp-http',
    async start(ctx: NodeContext) {
      const { createMcpHandler } = await import('@modelcontextprotocol/server');
      const { mcpServerFactory } = await import('../../mcp/mcp-server.js');
      // One server per request (the SDK's handler), made for the token that request showed (none when auth is none).
      const makeServer = await mcpServerFactory({ registry: ctx.commands, version: APIARY_VERSION, callNode: callNodeAs(undefined, ctx) });
      const handler = createMcpHandler(({ authInfo }) => {
        const token = authInfo ? { id: authInfo.clientId, scope: authInfo.scopes[0] } : undefined;
        return makeServer(token ? { callNode: callNodeAs(token, ctx) } : {});
      }, { onerror: (err) => ctx.logger.debug({ err: err.message }, 'MCP request refused') });
      close = handler.close;
      const gate = auth === 'owner-token' ? new McpTokenGate(config, ctx) : undefined;
      const listener = (req: IncomingMessage, res: ServerResponse) => {
        void serve(req, res, handler.fetch, ctx, gate).catch((err: unknown) => {
          ctx.counters.increment('mcp.http.errors');
          ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'MCP request failed');
          if (!res.headersSent) res.writeHead(500).end();
        });
      };
      const options = { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 10_000, requestTimeout: 30_000 };
      // Loaded here: the bundle would load node:http and node:https at every start, for an endpoint that is off by default.
      server = tls
        ? (await import('node:https')).createServer({ ...options, ...(await readBrokerTls(tls, 'mcp.http.tls')) }, listener)
        : (await import('node:http')).createServer(options, listener);
      server.maxConnections = MAX_CONNECTIONS;
      server.on('drop', () => ctx.counters.increment('mcp.http.refused_connections'));
      server.on('tlsClientError', () => ctx.counters.increment('mcp.http.tls_handshake_failed'));
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(port, host, () => resolve());
      });
      const bound = server.address() as AddressInfo;
      url = `${tls ? 'https' : 'http'}://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}/mcp`;
      ctx.logger.info({ url, auth }, auth === 'owner-token' ? 'MCP endpoint listening (owner tokens)' : 'MCP endpoint listening (loopback, read-only)');
    },
    async stop() {
      await close?.();
      const closing = server;
      server = undefined;
      // close() waits for open connections; an assistant's open stream must not hold the node's stop.
      if (closing) await new Promise<void>((resolve) => { closing.close(() => resolve()); closing.closeAllConnections(); });
    },
    status: () => ({ mcp: { http: { url, auth, tls: tls !== undefined, revokedTokens: config.mcp.http.revokedTokens.length } } }),
  };
}

/** Runs reads for anyone let in; writes only for a write-scope token, as the owner (the registry is the node's own). */
function callNodeAs(token: { id: string; scope: string | undefined } | undefined, ctx: NodeContext): CallNode {
  return async (command, args, { write }) => {
    const nodeId = ctx.identity.nodeId;
    if (write && token?.scope !== 'write') {
      ctx.counters.increment('mcp.http.writes_refused');
      return token !== undefined
        ? { nodeId, ok: false, code: ErrorCodes.MCP_TOKEN_SCOPE, error: `"${command}" changes the node: this token's scope is read; make a write one with \`apiary owner mcp-token --scope write\`` }
        : { nodeId, ok: false, code: ErrorCodes.COMMAND_UNSIGNED, error: `"${command}" changes the node: over this endpoint it is refused; writes need the owner's signature: use \`apiary mcp --owner-key <owner.json>\`, or mcp.http.auth: owner-token and a write token` };
    }
    ctx.counters.increment(write ? 'mcp.http.writes' : 'mcp.http.calls');
    if (write) ctx.logger.info({ command, token: token?.id }, 'MCP write run for the holder of an owner write token');
    return { nodeId, ...(await ctx.commands.run(command, args)) };
  };
}

/** A browser page must not reach a loopback endpoint by DNS rebinding: only loopback Host names are served. */
function loopbackHost(host: string | undefined): boolean {
  const name = (host ?? '').replace(/:\d+$/, '');
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

function loopbackOrigin(origin: string): boolean {
  try {
    return loopbackHost(new URL(origin).host);
  } catch {
    return false;
  }
}

type McpFetch = (request: Request, options?: { authInfo?: AuthInfo }) => Promise<Response>;

async function serve(req: IncomingMessage, res: ServerResponse, fetch: McpFetch, ctx: NodeContext, gate: McpTokenGate | undefined): Promise<void> {
  // With tokens, the token is the check (a page in a browser cannot send one); without, only loopback names are served.
  let authInfo: AuthInfo | undefined;
  if (gate) {
    const token = await gate.admit(req, res);
    if (!token) return;
    authInfo = { token: token.id, clientId: token.id, scopes: [token.scope], expiresAt: Math.floor(token.exp / 1000) };
  } else if (!loopbackHost(req.headers.host) || (req.headers.origin !== undefined && !loopbackOrigin(req.headers.origin))) {
    ctx.counters.increment('mcp.http.refused_host');
    res.writeHead(403, { 'content-type': 'text/plain' }).end('MCP here answers loopback Host and Origin only\n');
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      res.writeHead(413, { 'content-type': 'text/plain' }).end(`requests are limited to ${MAX_BODY_BYTES} bytes\n`);
      return;
    }
    chunks.push(chunk);
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const method = req.method ?? 'GET';
  const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
  });
  const response = await fetch(request, authInfo ? { authInfo } : undefined);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) { res.end(); return; }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
  res.end();
}
