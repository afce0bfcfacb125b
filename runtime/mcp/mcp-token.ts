/**
 * Owner-signed MCP access tokens: what an assistant sends (`Authorization:
 * Bearer <token>`) to a node's Streamable HTTP endpoint when mcp.http.auth is
 * `owner-token`. The owner key signs, domain-separated like the other signatures,
 *   "apiary-mcp-token-v1\n" + canonical JSON of {v, node, scope, iat, exp, id}
 * and the token is `apiary-mcp1.<base64url body>.<base64url signature>`, the
 * body being exactly those canonical bytes (one encoding per token, so its id
 * names one token). The node checks it with the owner key it already trusts;
 * it keeps no state per token (revocation is a list of ids in the config).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { verifySignature, type NodeIdentity } from '../identity/identity.js';

const DOMAIN = 'apiary-mcp-token-v1\n';
export const MCP_TOKEN_PREFIX = 'apiary-mcp1.';
/** How far the two clocks may disagree: a token is taken this long before its iat and after its exp. */
export const MCP_TOKEN_SKEW_MS = 60_000;
/** The longest a token may live: a leaked one must run out. */
export const MCP_TOKEN_MAX_LIFETIME_MS = 366 * 86_400_000;
/** A token is ~290 characters; anything longer is refused before it is decoded. */
export const MAX_MCP_TOKEN_CHARS = 1024;

export const MCP_TOKEN_ID = /^[A-Za-z0-9_-]{16}$/;

export const mcpTokenBodySchema = z.strictObject({
  v: z.literal(1),
  /** The node this token opens (12 characters, from `apiary id`). */
  node: z.string().regex(/^[a-z2-7]{12}$/),
  /** read: the read tools; write: also the tools that change the node, run as the owner. */
  scope: z.enum(['read', 'write']),
  /** Issued at and expires, ms since 1970. */
  iat: z.number().int().nonnegative(),
  exp: z.number().int().nonnegative(),
  /** Random; listed in mcp.http.revokedTokens to revoke the token. */
  id: z.string().regex(MCP_TOKEN_ID),
});
export type McpTokenBody = z.infer<typeof mcpTokenBodySchema>;
export type McpTokenScope = McpTokenBody['scope'];

function signedBytes(body: string): Buffer {
  return Buffer.from(DOMAIN + body, 'utf8');
}

export function signMcpToken(owner: NodeIdentity, options: { node: string; scope: McpTokenScope; lifetimeMs: number; now?: number }): { token: string; body: McpTokenBody } {
  const iat = options.now ?? Date.now();
  const body: McpTokenBody = { v: 1, node: options.node, scope: options.scope, iat, exp: iat + options.lifetimeMs, id: randomBytes(12).toString('base64url') };
  const json = canonicalJson(body);
  const sig = owner.sign(signedBytes(json)).toString('base64url');
  return { token: `${MCP_TOKEN_PREFIX}${Buffer.from(json, 'utf8').toString('base64url')}.${sig}`, body };
}

/** Why a token is refused; each names a counter (`mcp.http.auth.<reason>`). */
export type McpTokenRefusal = 'missing' | 'malformed' | 'no_owner_key' | 'bad_signature' | 'other_node' | 'not_yet_valid' | 'expired' | 'revoked';

export type McpTokenVerdict = { ok: true; body: McpTokenBody } | { ok: false; reason: McpTokenRefusal; error: string };

export interface McpTokenCheck {
  nodeId: string;
  /** The node's owner key; undefined while the node has none (then every token is refused). */
  ownerKey: string | undefined;
  revoked: ReadonlySet<string>;
  now: number;
}

const refuse = (reason: McpTokenRefusal, error: string): McpTokenVerdict => ({ ok: false, reason, error });

/** Checks a token for one node: form, signature by the owner key, node, time, revocation (in that order). */
export function verifyMcpToken(token: string, check: McpTokenCheck): McpTokenVerdict {
  const malformed = refuse('malformed', `the token is not one \`apiary owner mcp-token\` makes (${MCP_TOKEN_PREFIX}<body>.<signature>)`);
  if (token.length > MAX_MCP_TOKEN_CHARS || !token.startsWith(MCP_TOKEN_PREFIX)) return malformed;
  const [encoded, sig, ...rest] = token.slice(MCP_TOKEN_PREFIX.length).split('.');
  if (encoded === undefined || sig === undefined || rest.length > 0 || !/^[A-Za-z0-9_-]{86}$/.test(sig) || !/^[A-Za-z0-9_-]+$/.test(encoded)) return malformed;
  const json = Buffer.from(encoded, 'base64url').toString('utf8');
  let parsed: ReturnType<typeof mcpTokenBodySchema.safeParse>;
  try {
    parsed = mcpTokenBodySchema.safeParse(JSON.parse(json));
  } catch {
    return malformed;
  }
  // Only the canonical bytes: a re-encoded body would be a second token with the same id.
  if (!parsed.success || canonicalJson(parsed.data) !== json) return malformed;
  const body = parsed.data;
  if (check.ownerKey === undefined) return refuse('no_owner_key', 'this node has no owner key yet, so no token can be checked: start it once with the mesh on, or give mesh.owner.certificateFile');
  if (!verifySignature(check.ownerKey, signedBytes(json), Buffer.from(sig, 'base64url'))) {
    return refuse('bad_signature', 'the token is not signed by this node\'s owner key (or was altered): make one with `apiary owner mcp-token` and the owner key that certified the node');
  }
  if (body.node !== check.nodeId) return refuse('other_node', `the token was made for node ${body.node}, not ${check.nodeId}`);
  if (body.exp <= body.iat || body.exp - body.iat > MCP_TOKEN_MAX_LIFETIME_MS) return refuse('malformed', `the token must expire after it is issued, within ${MCP_TOKEN_MAX_LIFETIME_MS / 86_400_000} days`);
  if (body.iat > check.now + MCP_TOKEN_SKEW_MS) return refuse('not_yet_valid', `the token is issued at ${new Date(body.iat).toISOString()}, ahead of this node's clock: check both clocks`);
  if (check.now > body.exp + MCP_TOKEN_SKEW_MS) return refuse('expired', `the token expired at ${new Date(body.exp).toISOString()}: make a new one with \`apiary owner mcp-token\``);
  if (check.revoked.has(body.id)) return refuse('revoked', `the token ${body.id} is revoked (mcp.http.revokedTokens)`);
  return { ok: true, body };
}
