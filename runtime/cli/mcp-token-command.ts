/**
 * `apiary owner mcp-token --node <id> --scope read|write --expires 30d`: the
 * owner signs an access token for one node's MCP endpoint (mcp.http.auth:
 * owner-token; format in runtime/mcp/mcp-token.ts). Made on the owner's
 * machine; only the token travels to the assistant that uses it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { formatDuration, parseDuration } from '../config/units.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile } from '../identity/identity.js';
import { MCP_TOKEN_MAX_LIFETIME_MS, signMcpToken, type McpTokenScope } from '../mcp/mcp-token.js';

const MIN_LIFETIME_MS = 60_000;

export interface McpTokenOptions {
  keyFile: string;
  node: string;
  scope: string;
  expires: string;
  json?: boolean;
}

export async function mcpTokenCommand(options: McpTokenOptions): Promise<void> {
  if (!/^[a-z2-7]{12}$/.test(options.node)) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--node: ${JSON.stringify(options.node)} is not a node id`, { hint: 'give the 12-character id of the node whose endpoint the token opens (`apiary id` on it, or `apiary status`)' });
  if (options.scope !== 'read' && options.scope !== 'write') throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--scope: expected "read" or "write", got ${JSON.stringify(options.scope)}`, { hint: 'read: the read tools only; write: also the tools that change the node (shared_set, command with a write command)' });
  const lifetimeMs = parseDuration(options.expires);
  if (lifetimeMs === undefined || lifetimeMs < MIN_LIFETIME_MS || lifetimeMs > MCP_TOKEN_MAX_LIFETIME_MS) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--expires: expected a duration between ${formatDuration(MIN_LIFETIME_MS)} and ${formatDuration(MCP_TOKEN_MAX_LIFETIME_MS)}, like 12h, 30d; got ${JSON.stringify(options.expires)}`, { hint: 'a short life keeps a leaked token short-lived: prefer days for write tokens' });
  }
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'point --key-file at the owner key that certified the node' });
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const scope: McpTokenScope = options.scope;
  const { token, body } = signMcpToken(owner, { node: options.node, scope, lifetimeMs });
  const expires = new Date(body.exp).toISOString();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ token, id: body.id, node: body.node, scope, expires, owner: owner.publicKey })}\n`);
    return;
  }
  process.stdout.write(
    `${token}\n` +
      `MCP token ${body.id} for node ${body.node}, scope ${scope}, signed by owner ${owner.publicKey}, expires ${expires}\n` +
      `  on the board: mcp: { http: { enabled: true, auth: owner-token } } (off loopback also host: 0.0.0.0 and tls: { certificateFile, keyFile })\n` +
      `  in the assistant's MCP config: url https://<board>:8765/mcp (http://127.0.0.1:8765/mcp on the board), header Authorization: Bearer <the token above>\n` +
      `  to revoke it before it expires: add ${body.id} to mcp.http.revokedTokens on the board\n`,
  );
}
