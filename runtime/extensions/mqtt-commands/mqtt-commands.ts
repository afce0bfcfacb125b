/**
 * The MQTT view of the node's command registry (`<prefix>/<nodeId>/cmd/<name>`).
 * Every payload is size-limited and parsed here; the registry validates the
 * arguments and runs the command. A bad one is counted and answered with an
 * error, never acted on. Answers go only to the node's own reply topics, so a
 * request cannot make the node publish elsewhere.
 *
 * A request may carry `auth`, an owner signature envelope (command-auth.ts):
 * it asks to be judged as the owner's, so it runs only if the signature is
 * the node's owner's, fresh and not seen before (`apiary mcp` sends every
 * write so; it cannot drop the check by leaving out a key). Plain requests
 * without `auth` are answered as before (the broker admits anonymous clients
 * from loopback only by default, broker.anonymous), unless
 * `commands.writes: owner-signed`: then a write needs the envelope too.
 */
import { z } from 'zod';
import type { MessageHandler } from '../../bus/bus.js';
import { CommandVerifier } from '../../commands/command-auth.js';
import { ownOwnerKey } from '../../core/model-trust.js';
import { ErrorCodes } from '../../errors.js';
import type { NodeContext } from '../../core/node-context.js';

export const MAX_COMMAND_BYTES = 4096;
const requestSchema = z.strictObject({
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  args: z.record(z.string(), z.unknown()).optional(),
  /** Checked by CommandVerifier, so a malformed envelope is answered with its own code. */
  auth: z.unknown().optional(),
});

export class CommandHandler {
  private listener: MessageHandler | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly verifier: CommandVerifier;
  private ownerKey: string | undefined;
  /** Until the node has started, a command not defined yet may belong to an extension still starting. */
  private started = false;

  constructor(private readonly ctx: NodeContext) {
    // Read when first needed and kept once found: the mesh may make the owner key on this start.
    this.verifier = new CommandVerifier(ctx.identity.nodeId, async () => (this.ownerKey ??= await ownOwnerKey(ctx.config)));
  }

  async start(): Promise<void> {
    const prefix = `${this.ctx.topics.base}/cmd/`;
    this.listener = (topic, payload) => {
      const work = this.handle(topic.slice(prefix.length), payload).catch((err: unknown) => {
        this.ctx.counters.increment('commands.errors');
        this.ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'command failed');
      });
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    };
    this.ctx.events.on('started', () => { this.started = true; });
    await this.ctx.bus.subscribe(this.ctx.topics.commands, this.listener);
  }

  /** Takes no more commands, and waits for those being answered. */
  async stop(): Promise<void> {
    if (this.listener) await this.ctx.bus.unsubscribe(this.ctx.topics.commands, this.listener);
    this.listener = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  private async handle(name: string, payload: Buffer): Promise<void> {
    const { counters, logger, topics } = this.ctx;
    const request = this.parse(payload);
    if (!request.ok) {
      counters.increment('commands.rejected');
      logger.warn({ command: name, error: request.error }, 'rejected a malformed command');
      return;
    }
    // A write under `commands.writes: owner-signed` is judged as if it asked to be: no envelope is an unsigned one.
    const mustSign = this.ctx.config.commands.writes === 'owner-signed' && this.ctx.commands.get(name)?.write === true;
    const auth = request.auth ?? (mustSign ? { v: 1 } : undefined);
    if (auth !== undefined) {
      const verdict = await this.verifier.verify(name, request.args ?? {}, auth);
      if (!verdict.ok) {
        counters.increment('commands.rejected');
        counters.increment(`commands.auth.${verdict.reason}`);
        logger.warn({ command: name, code: verdict.code, error: verdict.error }, 'refused a command that is not validly owner-signed');
        if (request.requestId) await this.ctx.bus.publishJson(topics.reply(request.requestId), { ok: false, code: verdict.code, error: verdict.error }, { qos: 1 });
        return;
      }
      counters.increment('commands.auth.owner_signed');
    }
    const outcome = !this.started && !this.ctx.commands.get(name)
      ? { ok: false as const, code: ErrorCodes.NODE_STARTING, error: `the node is still starting: command "${name}" is not there yet; ask again in a moment` }
      : await this.ctx.commands.run(name, request.args);
    if (!outcome.ok) counters.increment('commands.rejected');
    else counters.increment('commands.handled');
    if (request.requestId) await this.ctx.bus.publishJson(topics.reply(request.requestId), outcome, { qos: 1 });
  }

  private parse(payload: Buffer): { ok: true; requestId: string | undefined; args: Record<string, unknown> | undefined; auth: unknown } | { ok: false; error: string } {
    if (payload.length > MAX_COMMAND_BYTES) return { ok: false, error: `payload of ${payload.length} bytes exceeds ${MAX_COMMAND_BYTES}` };
    let json: unknown = {};
    if (payload.length > 0) {
      try {
        json = JSON.parse(payload.toString('utf8'));
      } catch {
        return { ok: false, error: 'payload is not JSON' };
      }
    }
    const parsed = requestSchema.safeParse(json);
    return parsed.success ? { ok: true, requestId: parsed.data.requestId, args: parsed.data.args, auth: parsed.data.auth } : { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
  }
}
