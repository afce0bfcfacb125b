/**
 * Tasks between nodes: this node offers work in the shared state
 * (`capabilities`), bids on and does what linked peers of trusted owners
 * ask, and asks them in turn (contract net, agent.ts), all within the
 * owner's signed mandate. Needs the mesh.
 */
import path from 'node:path';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { TaskAgent } from './agent.js';
import { declareTasksCommands } from './commands.js';
import { paymentsOn } from './env.js';
import type { StoredReading } from './kinds.js';
import { loadMandate } from './mandate.js';

/** Readings read back from the tail of the readings stream to find one at a time. */
const MAX_RECORDS = 20_000;

async function readingAt(context: NodeContext, channel: string, t: number): Promise<StoredReading | undefined> {
  const stream = await context.storage.stream('readings');
  const { firstSeq, nextSeq } = stream.stats();
  let best: StoredReading | undefined;
  for await (const record of stream.read(Math.max(firstSeq, nextSeq - MAX_RECORDS))) {
    try {
      const r = JSON.parse(record.payload.toString('utf8')) as { channel?: unknown; value?: unknown; unit?: unknown; t?: unknown };
      if (r.channel !== channel || typeof r.value !== 'number' || typeof r.t !== 'number' || r.t > t) continue;
      if (!best || r.t > best.t) best = { value: r.value, unit: typeof r.unit === 'string' ? r.unit : '', t: r.t };
    } catch {
      context.counters.increment('storage.unreadable_records');
    }
  }
  return best;
}

export function createTasks(config: ApiaryConfig): Extension {
  let agent: TaskAgent | undefined;
  return {
    name: 'tasks',
    async start(context) {
      const { mesh } = context;
      if (!mesh) {
        declareTasksCommands(context.commands);
        context.logger.warn('tasks.enabled but the mesh is off: no tasks between nodes');
        return;
      }
      const owner = mesh.directory.get(mesh.nodeId)?.owner ?? '';
      const mandate = config.tasks.mandate === undefined ? undefined
        : await loadMandate(path.resolve(config.node.dataDir, config.tasks.mandate), mesh.nodeId, owner, Date.now());
      const created = new TaskAgent({
        mesh, node: context.identity, config: config.tasks, mandate, dataDir: config.node.dataDir, counters: context.counters, logger: context.logger,
        resources: { models: context.models, readingAt: (channel, t) => readingAt(context, channel, t) },
        run: (name, args) => context.commands.run(name, args),
        payments: () => paymentsOn(context.commands),
      });
      agent = created;
      declareTasksCommands(context.commands, {
        request: (args) => created.request(args),
        list: (limit) => created.store.all().reverse().slice(0, limit),
        show: (id) => created.store.get(id),
        pending: () => created.store.all().filter((r) => r.phase === 'input-required'),
        approve: (id) => created.requester.approve(id),
        reject: (id) => created.requester.reject(id),
      });
      // The models load after the first reading: offers name the model's sha256, so they are published once it is there.
      await created.start();
      context.track(context.modelsReady.then(() => created.publishOffers()));
      if (!mandate) context.logger.warn('tasks: no owner mandate (tasks.mandate): nothing is sold, and every request waits for the owner');
    },
    async stop() {
      await agent?.stop();
    },
    status: () => (agent ? { tasks: agent.status() } : {}),
  };
}
