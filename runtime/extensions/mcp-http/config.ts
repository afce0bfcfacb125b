/** The `mcp` config section: the node's own MCP endpoint (Streamable HTTP), off by default. */
import { z } from 'zod';

const LOOPBACK = ['127.0.0.1', '::1', 'localhost'] as const;

export const mcpSchema = z.strictObject({
  http: z.strictObject({
    /** Serve MCP over Streamable HTTP on the node itself; `apiary mcp` (stdio, over MQTT) needs no port on the board. */
    enabled: z.boolean().default(false),
    /** Loopback only: an owner-signed token for other addresses is later work, so they are refused here. */
    host: z.enum(LOOPBACK, { error: `expected a loopback address (${LOOPBACK.join(', ')}): the endpoint has no authentication, so it never listens on the network; from another machine use \`apiary mcp --host <board>\`` }).default('127.0.0.1'),
    /** 0 = any free port (in `apiary status` under mcp.http.url). */
    port: z.number().int().min(0).max(65_535).default(8765),
  }).prefault({}),
});
