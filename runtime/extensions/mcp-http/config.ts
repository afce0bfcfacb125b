/** The `mcp` config section: the node's own MCP endpoint (Streamable HTTP), off by default. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isLoopbackAddress } from '../../broker/broker-access.js';
import { MCP_TOKEN_ID } from '../../mcp/mcp-token.js';

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

export const mcpSchema = z.strictObject({
  http: z.strictObject({
    /** Serve MCP over Streamable HTTP on the node itself; `apiary mcp` (stdio, over MQTT) needs no port on the board. */
    enabled: z.boolean().default(false),
    /** Listen address: loopback unless auth is owner-token and tls is set (checked below). */
    host: z.string().refine((h) => h === 'localhost' || isIP(h) !== 0, { error: 'expected an IP address of this board (127.0.0.1, 0.0.0.0, 192.168.1.20, ::1) or localhost' }).default('127.0.0.1'),
    /** 0 = any free port (in `apiary status` under mcp.http.url). */
    port: z.number().int().min(0).max(65_535).default(8765),
    /**
     * none: no token, loopback only, read-only. owner-token: every request
     * needs `Authorization: Bearer <token>` signed by the owner key
     * (`apiary owner mcp-token`); a write-scope token runs write tools.
     */
    auth: z.enum(['none', 'owner-token'], { error: 'expected "none" (loopback, read-only) or "owner-token" (a token from `apiary owner mcp-token` on every request)' }).default('none'),
    /** Ids of tokens refused whatever their expiry (printed by `apiary owner mcp-token`). */
    revokedTokens: z.array(z.string().regex(MCP_TOKEN_ID, { error: 'expected a token id of 16 characters, as `apiary owner mcp-token` prints it' })).max(1024).default([]),
    /** Serve HTTPS with this PEM certificate and key (the files of broker.tls will do); needed off loopback, so a token never crosses the LAN in clear. */
    tls: z.strictObject({ certificateFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  }).superRefine((http, ctx) => {
    if (isLoopbackHost(http.host)) return;
    const missing = [http.auth !== 'owner-token' ? 'mcp.http.auth: owner-token' : undefined, http.tls === undefined ? 'mcp.http.tls (certificateFile, keyFile)' : undefined].filter((m) => m !== undefined);
    if (missing.length === 0) return;
    ctx.addIssue({
      code: 'custom', path: ['host'],
      message: `not a loopback address: listening on the network needs ${missing.join(' and ')}, so that only the owner's tokens are served and never cross the network in clear; or keep host 127.0.0.1 and use \`apiary mcp --host <board>\` from another machine`,
    });
  }).prefault({}),
});
