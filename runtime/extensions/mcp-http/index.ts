/**
 * The node's own MCP endpoint (mcp.http): the same eight tools as
 * `apiary mcp`, served over Streamable HTTP on loopback, with the registry
 * run in-process. It is read-only: a write needs the owner's signature, which
 * only `apiary mcp --owner-key` (over MQTT) sends, so writes here are refused
 * (APIARY_COMMAND_UNSIGNED) and counted. The SDK is imported only when the
 * endpoint is on (RAM on a 512 MB board).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { ErrorCodes } from '../../errors.js';
import { APIARY_VERSION } from '../../core/node-status.js';

/** Requests larger than this are refused before parsing (a tool call is a few hundred bytes). */
const MAX_BODY_BYTES = 64 * 1024;

export function createMcpHttp(config: ApiaryConfig): Extension {
  let server: Server | undefined;
  let close: (() => Promise<void>) | undefined;
  let url: string | undefined;
  return {
    name: 'mcp-http',
    async start(ctx: NodeContext) {
      const { createMcpHandler } = await import('@modelcontextprotocol/server');
      const { mcpServerFactory } = await import('../../mcp/mcp-server.js');
      const handler = createMcpHandler(await mcpServerFactory({
        registry: ctx.commands,
        version: APIARY_VERSION,
        callNode: async (command, args, { write }) => {
          if (write) {
            ctx.counters.increment('mcp.http.writes_refused');
            return { nodeId: ctx.identity.nodeId, ok: false, code: ErrorCodes.COMMAND_UNSIGNED, error: `"${command}" changes the node: over this endpoint it is refused; writes need the owner's signature: use \`apiary mcp --owner-key <owner.json>\`` };
          }
          ctx.counters.increment('mcp.http.calls');
          return { nodeId: ctx.identity.nodeId, ...(await ctx.commands.run(command, args)) };
        },
      }), { onerror: (err) => ctx.logger.debug({ err: err.message }, 'MCP request refused') });
      close = handler.close;
      const { host, port } = config.mcp.http;
      server = createServer((req, res) => {
        void serve(req, res, handler.fetch, ctx).catch((err: unknown) => {
          ctx.counters.increment('mcp.http.errors');
          ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'MCP request failed');
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(port, host, () => resolve());
      });
      const bound = server.address() as AddressInfo;
      url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}/mcp`;
      ctx.logger.info({ url }, 'MCP endpoint listening (loopback, read-only)');
    },
    async stop() {
      await close?.();
      const closing = server;
      server = undefined;
      // close() waits for open connections; an assistant's open stream must not hold the node's stop.
      if (closing) await new Promise<void>((resolve) => { closing.close(() => resolve()); closing.closeAllConnections(); });
    },
    status: () => ({ mcp: { http: { url } } }),
  };
}

/** A browser page must not reach a loopback endpoint by DNS rebinding: only loopback Host names are served. */
function loopbackHost(host: string | undefined): boolean {
  const name = (host ?? '').replace(/:\d+$/, '');
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

async function serve(req: IncomingMessage, res: ServerResponse, fetch: (request: Request) => Promise<Response>, ctx: NodeContext): Promise<void> {
  if (!loopbackHost(req.headers.host) || (req.headers.origin !== undefined && !loopbackHost(new URL(req.headers.origin).host))) {
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
  const response = await fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) { res.end(); return; }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
  res.end();
}
