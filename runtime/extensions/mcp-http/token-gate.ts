/**
 * The door of the MCP endpoint when mcp.http.auth is owner-token: every
 * request shows an owner-signed token (runtime/mcp/mcp-token.ts) before its
 * body is read. A refusal is HTTP 401 with a JSON-RPC error carrying
 * APIARY_MCP_TOKEN_INVALID and the reason, counted under
 * mcp.http.auth.<reason>. Nothing is kept per token: the check is a signature
 * and a lookup in the configured revocation list.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiaryConfig } from '../../config/schema.js';
import type { NodeContext } from '../../core/node-context.js';
import { ownOwnerKey } from '../../core/model-trust.js';
import { ErrorCodes } from '../../errors.js';
import { MAX_MCP_TOKEN_CHARS, verifyMcpToken, type McpTokenBody, type McpTokenVerdict } from '../../mcp/mcp-token.js';

/** JSON-RPC's range for server errors; -32001 is what MCP servers answer for "unauthorized". */
const JSONRPC_UNAUTHORIZED = -32001;

export class McpTokenGate {
  private ownerKey: string | undefined;
  private readonly revoked: ReadonlySet<string>;

  constructor(private readonly config: ApiaryConfig, private readonly ctx: NodeContext) {
    this.revoked = new Set(config.mcp.http.revokedTokens);
  }

  /** The token's body when the request may go on; otherwise it has been answered 401 and counted. */
  async admit(req: IncomingMessage, res: ServerResponse): Promise<McpTokenBody | undefined> {
    const verdict = await this.check(req.headers.authorization);
    if (verdict.ok) {
      this.ctx.counters.increment('mcp.http.auth.accepted');
      return verdict.body;
    }
    this.ctx.counters.increment(`mcp.http.auth.${verdict.reason}`);
    this.ctx.logger.debug({ reason: verdict.reason, remote: req.socket.remoteAddress }, 'MCP request without a valid token refused');
    const message = `${ErrorCodes.MCP_TOKEN_INVALID}: ${verdict.error}`;
    res.writeHead(401, {
      'content-type': 'application/json',
      // RFC 6750; no resource_metadata, so clients do not go looking for an OAuth server.
      'www-authenticate': `Bearer realm="apiary", error="invalid_token", error_description="${verdict.reason}"`,
    }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: JSONRPC_UNAUTHORIZED, message, data: { code: ErrorCodes.MCP_TOKEN_INVALID, reason: verdict.reason } } }));
    return undefined;
  }

  private async check(header: string | undefined): Promise<McpTokenVerdict> {
    if (header === undefined || header === '') return { ok: false, reason: 'missing', error: 'this endpoint needs `Authorization: Bearer <token>`, a token from `apiary owner mcp-token` on the owner\'s machine' };
    const match = header.length <= MAX_MCP_TOKEN_CHARS + 16 ? /^Bearer +(\S+)$/i.exec(header) : null;
    if (!match?.[1]) return { ok: false, reason: 'malformed', error: 'expected the header `Authorization: Bearer <token>`' };
    // Read when first needed and kept once found: the mesh may make the owner key on this start.
    this.ownerKey ??= await ownOwnerKey(this.config);
    return verifyMcpToken(match[1], { nodeId: this.ctx.identity.nodeId, ownerKey: this.ownerKey, revoked: this.revoked, now: Date.now() });
  }
}
