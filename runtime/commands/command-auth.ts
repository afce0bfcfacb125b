/**
 * Owner-signed commands: the envelope a command request carries in `auth`
 * when its sender wants to be judged as the node's owner (every `apiary mcp`
 * write). The owner key signs, domain-separated like the other signatures,
 *   "apiary-command-v1\n" + canonical JSON of [nodeId, command, args, t, nonce]
 * so a signature for one node, command or argument set is worth nothing for
 * another. The node (mqtt-commands) checks it against its own owner key, the
 * time against a skew, and the nonce against a bounded cache of those seen.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import { verifySignature, type NodeIdentity } from '../identity/identity.js';

const DOMAIN = 'apiary-command-v1\n';
/** How far a signed command's time may be from the node's clock (either way). */
export const COMMAND_MAX_SKEW_MS = 120_000;
/** Nonces remembered at once: one per signed command within the skew window, ~80 a second at most. */
export const MAX_REMEMBERED_NONCES = 10_000;

const KEY = /^[A-Za-z0-9_-]{43}$/;
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const SIG = /^[A-Za-z0-9_-]{86}$/;

/**
 * `{v: 1}` alone asks to be judged as the owner without a signature (an
 * `apiary mcp` that holds no owner key): the node refuses its writes.
 */
export const commandAuthSchema = z.strictObject({
  v: z.literal(1),
  key: z.string().regex(KEY).optional(),
  t: z.number().int().nonnegative().optional(),
  nonce: z.string().regex(NONCE).optional(),
  sig: z.string().regex(SIG).optional(),
});
export type CommandAuth = z.infer<typeof commandAuthSchema>;

function signedBytes(nodeId: string, command: string, args: Record<string, unknown>, t: number, nonce: string): Buffer {
  return Buffer.from(DOMAIN + canonicalJson([nodeId, command, args, t, nonce]), 'utf8');
}

/** The envelope for one command to one node, signed with the owner key. */
export function signCommand(owner: NodeIdentity, nodeId: string, command: string, args: Record<string, unknown>, now = Date.now()): CommandAuth {
  const nonce = randomBytes(16).toString('base64url');
  return { v: 1, key: owner.publicKey, t: now, nonce, sig: owner.sign(signedBytes(nodeId, command, args, now, nonce)).toString('base64url') };
}

export type AuthVerdict =
  | { ok: true }
  /** `reason` names the counter (`commands.auth.<reason>`). */
  | { ok: false; code: ErrorCode; reason: 'malformed' | 'unsigned' | 'not_owner' | 'stale' | 'bad_signature' | 'replayed'; error: string };

/**
 * Checks envelopes for one node. The nonce is remembered only once the
 * signature holds, so a stranger cannot fill the cache; when it is full of
 * nonces still inside the window, signed commands wait rather than risk a replay.
 */
export class CommandVerifier {
  /** Nonce -> the time it stops mattering (t + skew). Insertion order is time order, near enough. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly nodeId: string, private readonly ownerKey: () => Promise<string | undefined>, private readonly now: () => number = Date.now) {}

  async verify(command: string, args: Record<string, unknown>, raw: unknown): Promise<AuthVerdict> {
    const parsed = commandAuthSchema.safeParse(raw);
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => (i.path.length > 0 ? i.path.join('.') : 'auth')).join(', ');
      return { ok: false, code: ErrorCodes.COMMAND_SIGNATURE_INVALID, reason: 'malformed', error: `malformed owner signature envelope (field ${fields}): expected auth {v: 1, key, t, nonce, sig} as \`apiary mcp --owner-key\` sends` };
    }
    const { key, t, nonce, sig } = parsed.data;
    if (key === undefined || t === undefined || nonce === undefined || sig === undefined) {
      return { ok: false, code: ErrorCodes.COMMAND_UNSIGNED, reason: 'unsigned', error: `"${command}" needs the owner's signature (sent by apiary mcp, or commands.writes: owner-signed): run it through \`apiary mcp --owner-key <owner.json>\`, the key that signed this node's certificate` };
    }
    const owner = await this.ownerKey();
    if (owner === undefined) return { ok: false, code: ErrorCodes.COMMAND_NOT_OWNER, reason: 'not_owner', error: `node ${this.nodeId} has no owner key yet (mesh.owner), so it cannot tell its owner's signature` };
    if (key !== owner) return { ok: false, code: ErrorCodes.COMMAND_NOT_OWNER, reason: 'not_owner', error: `"${command}" is signed by ${key.slice(0, 8)}..., not by the owner of node ${this.nodeId}: use the owner key file that signed its certificate` };
    const now = this.now();
    if (Math.abs(now - t) > COMMAND_MAX_SKEW_MS) {
      return { ok: false, code: ErrorCodes.COMMAND_REPLAYED, reason: 'stale', error: `"${command}" was signed ${Math.round((now - t) / 1000)} s from node ${this.nodeId}'s clock (at most ${COMMAND_MAX_SKEW_MS / 1000} s): check both clocks` };
    }
    if (!verifySignature(key, signedBytes(this.nodeId, command, args, t, nonce), Buffer.from(sig, 'base64url'))) {
      return { ok: false, code: ErrorCodes.COMMAND_SIGNATURE_INVALID, reason: 'bad_signature', error: `the owner signature on "${command}" does not verify for node ${this.nodeId} and these arguments` };
    }
    this.forgetExpired(now);
    if (this.seen.has(nonce)) return { ok: false, code: ErrorCodes.COMMAND_REPLAYED, reason: 'replayed', error: `"${command}" with this nonce was run already: a replayed command is refused` };
    if (this.seen.size >= MAX_REMEMBERED_NONCES) {
      return { ok: false, code: ErrorCodes.COMMAND_REPLAYED, reason: 'replayed', error: `too many signed commands within ${COMMAND_MAX_SKEW_MS / 1000} s: try again shortly` };
    }
    this.seen.set(nonce, t + COMMAND_MAX_SKEW_MS);
    return { ok: true };
  }

  private forgetExpired(now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until >= now) continue;
      this.seen.delete(nonce);
    }
  }
}
