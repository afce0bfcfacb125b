/**
 * `apiary mcp`: an MCP server on stdio, run by an AI assistant on the
 * owner's machine. It asks a node (local or remote, found as every node
 * command finds one) over its MQTT command topics, so the board opens no new
 * port. Writes go owner-signed when it holds the owner key; without one they
 * are sent marked as wanting the owner's signature, and the node refuses
 * them (APIARY_COMMAND_UNSIGNED). stdout is the JSON-RPC channel: anything
 * said goes to stderr.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { signCommand } from '../commands/command-auth.js';
import { allNodeCommands } from '../apps/applications.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../identity/identity.js';
import { askNode, type NodeOptions } from './node-options.js';

export const DEFAULT_OWNER_KEY_FILE = 'owner.json';

export interface McpCommandOptions extends NodeOptions {
  /** The owner key file that signs writes; default ./owner.json if it exists. */
  ownerKey?: string;
}

/** The owner key, if there is one: never made here (that is `apiary owner init`). */
export async function readOwnerKey(file: string | undefined): Promise<NodeIdentity | undefined> {
  const resolved = path.resolve(file ?? DEFAULT_OWNER_KEY_FILE);
  if (!existsSync(resolved)) {
    if (file === undefined) return undefined;
    throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${resolved} (--owner-key)`, {
      hint: 'point --owner-key at the owner key file that signed the node\'s certificate (`apiary owner show --key-file <file>` prints its key), or leave it out to serve read-only',
    });
  }
  return (await loadOrCreateKeyFile(resolved)).identity;
}

export async function mcpCommand(options: McpCommandOptions, version: string): Promise<void> {
  const owner = await readOwnerKey(options.ownerKey);
  process.stderr.write(owner
    ? `apiary mcp: serving MCP on stdio; writes are signed with owner key ${owner.publicKey.slice(0, 8)}...\n`
    : `apiary mcp: serving MCP on stdio; no owner key (--owner-key), so the node refuses writes\n`);
  const { mcpServerFactory } = await import('../mcp/mcp-server.js');
  const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
  const makeServer = await mcpServerFactory({
    registry: allNodeCommands(),
    version,
    callNode: (command, args, { write }) => askNode(options, command, args, write
      ? (nodeId) => (owner ? signCommand(owner, nodeId, command, args) : { v: 1 })
      : undefined),
  });
  serveStdio(() => makeServer());
}
