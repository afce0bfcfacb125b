/**
 * Mesh nodes of different owners, each with a real task agent: its own
 * broker, data dir, owner key and owner-signed mandate, the shipped
 * hive-sound model on the real ONNX runtime, and readings on disk.
 */
import path from 'node:path';
import pino from 'pino';
import { ModelHost } from '../../../../runtime/core/model-host.js';
import { loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { tasksSchema } from '../../../../runtime/extensions/tasks/config.js';
import { TaskAgent } from '../../../../runtime/extensions/tasks/agent.js';
import { mandateBodySchema, signMandate, type MandateBody } from '../../../../runtime/extensions/tasks/mandate.js';
import type { StoredReading } from '../../../../runtime/extensions/tasks/kinds.js';
import { OnnxRuntimeNodeBackend } from '../../../../models/inference/onnxruntime-node-backend.js';
import { loadOrCreateIdentity } from '../../../../runtime/identity/identity.js';
import { startMeshNode, type TestMeshNode } from '../../../support/mesh-node.js';
import type { ConfigInput } from '../../../../runtime/config/schema.js';
import { CommandRegistry } from '../../../../runtime/commands/command-registry.js';
import { paymentsOn } from '../../../../runtime/extensions/tasks/env.js';
import { z } from 'zod';

export interface TaskNode {
  readonly mesh: TestMeshNode;
  readonly agent: TaskAgent;
  readonly models: ModelHost;
  readonly owner: string;
  stop(): Promise<void>;
}

export type MandateInput = Partial<Omit<MandateBody, 'v' | 'node'>>;

/** A mandate that lets a node sell and buy both kinds, for free work, with a budget of 100 a day. */
export const OPEN_MANDATE: MandateInput = {
  sell: { kinds: ['hive-sound', 'reading-at'], minPrice: 0 },
  buy: { kinds: ['hive-sound', 'reading-at'], maxPrice: 10 },
  dailyBudget: 100,
  data: { rawAudio: false, sellChannels: ['temperature'] },
};

export async function ownerKeysOf(dirs: readonly string[]): Promise<string[]> {
  return Promise.all(dirs.map(async (d) => (await loadOrCreateKeyFile(path.join(d, 'owner.json'))).identity.publicKey));
}

/** The mean of every input feature of the shipped hive-sound model: a valid feature vector. */
export function meanFeatures(models: ModelHost): Record<string, number> {
  const specs = models.loaded('hive-sound')?.manifest.inputs[0]?.features ?? [];
  return Object.fromEntries(specs.map((f) => [f.name, f.mean]));
}

export async function startTaskNode(options: {
  name: string; dir: string; trustedOwners: string[]; tasks?: z.input<typeof tasksSchema>; mandate?: MandateInput | null;
  mesh?: ConfigInput['mesh']; readings?: Record<string, StoredReading[]>; model?: boolean; payments?: PaymentBook;
  /** A new agent (as after a restart) on this running mesh node: stop() then stops the agent only. */
  reuse?: TestMeshNode;
}): Promise<TaskNode> {
  const mesh = options.reuse ?? await startMeshNode({ name: options.name, dir: options.dir, trustedOwners: options.trustedOwners, ...(options.mesh ? { mesh: options.mesh } : {}) });
  const owner = await loadOrCreateKeyFile(path.join(options.dir, 'owner.json'));
  const { identity: node } = await loadOrCreateIdentity(options.dir);
  const models = new ModelHost(new OnnxRuntimeNodeBackend(), {});
  if (options.model !== false) models.use('hive-sound');
  await models.start();
  const config = tasksSchema.parse({ enabled: true, bidWindow: '600ms', ackTimeout: '1s', grace: '1s', spotCheck: 0, ...options.tasks });
  const mandate = options.mandate === null ? undefined : signMandate(owner.identity, mandateBodySchema.parse({
    v: 1, node: node.nodeId, expires: new Date(Date.now() + 86_400_000).toISOString(), ...OPEN_MANDATE, ...options.mandate,
  }));
  const readings = options.readings ?? {};
  const registry = new CommandRegistry();
  if (options.payments) definePaymentStandIns(registry, options.payments);
  const agent = new TaskAgent({
    mesh: mesh.mesh, node, config, mandate, dataDir: options.dir, counters: mesh.counters, logger: pino({ level: 'silent' }),
    resources: {
      models,
      readingAt: (channel, t) => Promise.resolve((readings[channel] ?? []).filter((r) => r.t <= t).sort((a, b) => b.t - a.t)[0]),
    },
    run: (name, args) => registry.run(name, args),
    payments: () => paymentsOn(registry),
    tickMs: 50,
  });
  await agent.start();
  return {
    mesh, agent, models, owner: owner.identity.publicKey,
    stop: async () => {
      await agent.stop();
      if (!options.reuse) await mesh.stop();
      await models.stop();
    },
  };
}

/**
 * Stand-ins for the payments branch's two registry commands (same names and
 * shapes as its brief: `pay/credit-check`, `pay/send`), until it is merged:
 * an in-memory book of what each payer owes, with one credit limit.
 */
export interface PaymentBook {
  limit: number;
  owed: Map<string, number>;
  sent: { payee: string; amount: number; task: string }[];
}

export function paymentBook(limit: number): PaymentBook {
  return { limit, owed: new Map(), sent: [] };
}

function definePaymentStandIns(registry: CommandRegistry, book: PaymentBook): void {
  registry.define('pay/credit-check', {
    description: 'stand-in', args: z.object({ payer: z.string(), unit: z.string(), amount: z.number(), limit: z.number().optional() }),
    handler: ({ payer, amount, limit: cap }) => {
      const outstanding = book.owed.get(payer) ?? 0;
      const limit = Math.min(book.limit, cap ?? Infinity);
      return outstanding + amount > limit ? { ok: false, reason: 'credit-limit', outstanding, limit } : { ok: true, outstanding, limit };
    },
  });
  registry.define('pay/send', {
    description: 'stand-in', args: z.object({ payee: z.string(), unit: z.string(), amount: z.number(), memo: z.object({ task: z.string() }) }),
    handler: ({ payee, amount, memo }) => {
      book.sent.push({ payee, amount, task: memo.task });
      return { voucher: { payee, amount } };
    },
  });
}
