/**
 * Requests to the node over MQTT (`<prefix>/<nodeId>/cmd/<name>`). Every
 * payload is size-limited, parsed and schema-checked; a bad one is counted and
 * answered with an error, never acted on. Answers go only to the node's own
 * reply topics, so a request cannot make the node publish elsewhere.
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { ErrorCodes } from '../errors.js';
import type { NodeContext } from './apiary-node.js';

export const MAX_COMMAND_BYTES = 4096;
const requestSchema = z.strictObject({ requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional() });

export interface CommandTargets {
  status(): Promise<Record<string, unknown>>;
  injectSwarm(): { preSwarmFrom: number; swarmFrom: number; swarmUntil: number } | undefined;
}

type Outcome = { ok: true; result: unknown } | { ok: false; code: string; error: string };

export class CommandHandler {
  constructor(private readonly ctx: NodeContext, private readonly bus: Bus, private readonly targets: CommandTargets) {}

  async start(): Promise<void> {
    const prefix = `${this.ctx.topics.base}/cmd/`;
    await this.bus.subscribe(this.ctx.topics.commands, (topic, payload) => {
      void this.handle(topic.slice(prefix.length), payload).catch((err: unknown) => {
        this.ctx.counters.increment('commands.errors');
        this.ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'command failed');
      });
    });
  }

  private async handle(name: string, payload: Buffer): Promise<void> {
    const { counters, logger, topics } = this.ctx;
    const request = this.parse(payload);
    if (!request.ok) {
      counters.increment('commands.rejected');
      logger.warn({ command: name, error: request.error }, 'rejected a malformed command');
      return;
    }
    const outcome = await this.run(name);
    if (!outcome.ok) counters.increment('commands.rejected');
    else counters.increment('commands.handled');
    if (request.requestId) await this.bus.publishJson(topics.reply(request.requestId), outcome, { qos: 1 });
  }

  private parse(payload: Buffer): { ok: true; requestId: string | undefined } | { ok: false; error: string } {
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
    return parsed.success ? { ok: true, requestId: parsed.data.requestId } : { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
  }

  private async run(name: string): Promise<Outcome> {
    switch (name) {
      case 'status':
        return { ok: true, result: await this.targets.status() };
      case 'sim/swarm': {
        const schedule = this.targets.injectSwarm();
        if (!schedule) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'this node has no simulated device: a swarm can only be injected into a simulated beehive' };
        this.ctx.logger.info({ schedule }, 'swarm injected into the simulated hive');
        return { ok: true, result: schedule };
      }
      default:
        return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: `unknown command "${name}": known commands are status and sim/swarm` };
    }
  }
}
