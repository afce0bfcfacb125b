/**
 * Requests to the node over MQTT (`<prefix>/<nodeId>/cmd/<name>`). Every
 * payload is size-limited, parsed and schema-checked; a bad one is counted and
 * answered with an error, never acted on. Answers go only to the node's own
 * reply topics, so a request cannot make the node publish elsewhere.
 */
import { z } from 'zod';
import type { Bus } from '../bus/bus.js';
import { ErrorCodes, isApiaryError } from '../errors.js';
import type { JsonValue } from '../mesh/shared-state.js';
import type { NodeContext } from './apiary-node.js';
import type { AuditResult } from './decision-audit.js';
import type { UpdateReport } from './model-updates.js';

export const MAX_COMMAND_BYTES = 4096;
const requestSchema = z.strictObject({
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  args: z.record(z.string(), z.unknown()).optional(),
});

/** Maps of the shared document a person may edit; `members` is each node's own record, written by the node. */
const SHARED_MAP = /^(?!members$)[a-z][a-z0-9-]{0,31}$/;
const sharedSetSchema = z.strictObject({
  map: z.string().regex(SHARED_MAP, { error: 'map: 1-32 lower-case letters, digits or dashes, not "members" (each node writes its own)' }),
  key: z.string().min(1).max(128),
  value: z.json(),
});

const publishSchema = z.strictObject({
  dir: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'dir: an absolute path on the node\'s machine'),
});
const auditSchema = z.strictObject({
  origin: z.string().regex(/^[a-z2-7]{12}$/, { error: 'origin: a 12-character node id' }).optional(),
  limit: z.number().int().min(1).max(200).default(20),
});

export interface CommandTargets {
  status(): Promise<Record<string, unknown>>;
  injectSwarm(): { preSwarmFrom: number; swarmFrom: number; swarmUntil: number } | undefined;
  /** The mesh's shared document, when the mesh is on. */
  shared: { get(): Record<string, JsonValue>; set(map: string, key: string, value: JsonValue): Promise<void> } | undefined;
  /** Publishes a signed model folder on this machine to the mesh (mesh on, models.meshUpdates). */
  publishModel: ((dir: string) => Promise<UpdateReport | undefined>) | undefined;
  /** Applies and spreads an owner-signed revocation (mesh/revocation.ts), when the mesh is on. */
  revoke?: ((revocation: unknown) => Promise<{ nodeId: string; applied: boolean }>) | undefined;
  /** Audits decisions in the feeds this node holds (mesh on). */
  audit: ((options: { origin?: string | undefined; limit: number }) => Promise<AuditResult[]>) | undefined;
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
    const outcome = await this.run(name, request.args);
    if (!outcome.ok) counters.increment('commands.rejected');
    else counters.increment('commands.handled');
    if (request.requestId) await this.bus.publishJson(topics.reply(request.requestId), outcome, { qos: 1 });
  }

  private parse(payload: Buffer): { ok: true; requestId: string | undefined; args: Record<string, unknown> | undefined } | { ok: false; error: string } {
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
    return parsed.success ? { ok: true, requestId: parsed.data.requestId, args: parsed.data.args } : { ok: false, error: parsed.error.issues.map((i) => i.message).join('; ') };
  }

  private async run(name: string, args: Record<string, unknown> | undefined): Promise<Outcome> {
    switch (name) {
      case 'status':
        return { ok: true, result: await this.targets.status() };
      case 'sim/swarm': {
        const schedule = this.targets.injectSwarm();
        if (!schedule) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'this node has no simulated device: a swarm can only be injected into a simulated beehive' };
        this.ctx.logger.info({ schedule }, 'swarm injected into the simulated hive');
        return { ok: true, result: schedule };
      }
      case 'shared/get':
      case 'shared/set': {
        const shared = this.targets.shared;
        if (!shared) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'the mesh is off on this node (mesh.enabled), so it has no shared state' };
        if (name === 'shared/get') return { ok: true, result: shared.get() };
        const parsed = sharedSetSchema.safeParse(args ?? {});
        if (!parsed.success) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: parsed.error.issues.map((i) => `${i.path.join('.') || 'args'}: ${i.message}`).join('; ') };
        await shared.set(parsed.data.map, parsed.data.key, parsed.data.value);
        this.ctx.logger.info({ map: parsed.data.map, key: parsed.data.key }, 'shared state set');
        return { ok: true, result: { map: parsed.data.map, key: parsed.data.key, value: parsed.data.value } };
      }
      case 'mesh/revoke': {
        if (!this.targets.revoke) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'the mesh is off on this node (mesh.enabled)' };
        try {
          return { ok: true, result: await this.targets.revoke(args?.revocation) };
        } catch (err) {
          return { ok: false, code: (err as { code?: string }).code ?? ErrorCodes.COMMAND_INVALID, error: (err as Error).message };
        }
      }
      case 'models/publish': {
        if (!this.targets.publishModel) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'this node does not take model updates: it needs mesh.enabled and models.meshUpdates' };
        const parsed = publishSchema.safeParse(args ?? {});
        if (!parsed.success) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: parsed.error.issues.map((i) => `${i.path.join('.') || 'args'}: ${i.message}`).join('; ') };
        try {
          return { ok: true, result: await this.targets.publishModel(parsed.data.dir) };
        } catch (err) {
          if (!isApiaryError(err)) throw err;
          return { ok: false, code: err.code, error: err.hint ? `${err.message} (${err.hint})` : err.message };
        }
      }
      case 'decisions/audit': {
        if (!this.targets.audit) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: 'the mesh is off on this node (mesh.enabled), so it keeps no signed feed to audit' };
        const parsed = auditSchema.safeParse(args ?? {});
        if (!parsed.success) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: parsed.error.issues.map((i) => `${i.path.join('.') || 'args'}: ${i.message}`).join('; ') };
        return { ok: true, result: await this.targets.audit(parsed.data) };
      }
      default:
        return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: `unknown command "${name}": known commands are status, sim/swarm, shared/get, shared/set, mesh/revoke, models/publish and decisions/audit` };
    }
  }
}
