/**
 * A worker thread of the mesh catch-up benchmark (catchup.ts): it hosts some
 * of the mesh nodes, so a 20-node mesh can use more than one core, and
 * answers the coordinator's requests (start, link, append, write for a
 * while, report heads and counters, stop). Links between nodes are TCP
 * connections through the coordinator's proxies, wherever the nodes live.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { ConfigInput } from '../../runtime/config/schema.js';
import { encodeEntry } from '../../runtime/mesh/feed-entry.js';
import { startMeshNode, type TestMeshNode } from '../support/mesh-node.js';

export interface ShardData {
  readonly nodes: readonly { readonly index: number; readonly name: string; readonly dir: string }[];
  readonly trustedOwners: readonly string[];
  readonly mesh: ConfigInput['mesh'];
}

export type ShardRequest =
  | { readonly op: 'start' }
  | { readonly op: 'link'; readonly links: readonly { readonly from: number; readonly url: string; readonly peerId: string }[] }
  /** One entry from every node of this shard. */
  | { readonly op: 'round'; readonly k: number }
  /**
   * Appends for `ms` from the epoch time `startAt`: node `index` writes at
   * startAt + (k * total + index) * gapMs for k = 0, 1, ... A node whose previous
   * append has not finished skips its turn.
   */
  | { readonly op: 'write'; readonly startAt: number; readonly ms: number; readonly gapMs: number; readonly total: number }
  /** Heads and counters; the shared-state hashes only when asked (they cost a serialisation each). */
  | { readonly op: 'poll'; readonly states?: boolean }
  | { readonly op: 'stop'; readonly timeoutMs: number };

export interface ShardPoll {
  /** Node index -> origin node id -> seq held. */
  readonly heads: Record<number, Record<string, number>>;
  /** Node index -> sha256 of its shared state, canonical. */
  readonly states: Record<number, string>;
  /** Counters summed over this shard's nodes. */
  readonly counters: Record<string, number>;
}

export type ShardReply =
  | { readonly op: 'started'; readonly nodes: readonly { readonly index: number; readonly nodeId: string; readonly port: number }[] }
  | { readonly op: 'ok' }
  /** Node index -> bytes of each of its entries so far, by seq - 1. */
  | { readonly op: 'sizes'; readonly sizes: Record<number, number[]>; readonly skipped: number }
  | ({ readonly op: 'poll' } & ShardPoll)
  | { readonly op: 'stopped'; readonly failed: number };

const CHANNELS = [
  { channel: 'temperature', unit: '°C', base: 34.5, spread: 0.8 },
  { channel: 'humidity', unit: '%', base: 58, spread: 4 },
  { channel: 'weight', unit: 'kg', base: 42.3, spread: 0.2 },
  { channel: 'sound_level', unit: 'dB', base: 61, spread: 6 },
] as const;

/** A reading as a node shares it (ApiaryNode.onReading): channel, value, unit, t and ISO time. */
function reading(k: number): Record<string, unknown> {
  const c = CHANNELS[k % CHANNELS.length] as (typeof CHANNELS)[number];
  const t = Date.now();
  return { channel: c.channel, value: Math.round((c.base + (Math.random() - 0.5) * c.spread) * 100) / 100, unit: c.unit, t, time: new Date(t).toISOString() };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

class Shard {
  private readonly nodes = new Map<number, TestMeshNode>();
  private readonly sizes = new Map<number, number[]>();

  constructor(private readonly data: ShardData) {}

  async handle(request: ShardRequest): Promise<ShardReply> {
    switch (request.op) {
      case 'start':
        for (const spec of this.data.nodes) {
          const node = await startMeshNode({ name: spec.name, dir: spec.dir, trustedOwners: [...this.data.trustedOwners], mesh: this.data.mesh });
          this.nodes.set(spec.index, node);
          this.sizes.set(spec.index, []);
        }
        return { op: 'started', nodes: [...this.nodes].map(([index, node]) => ({ index, nodeId: node.node.nodeId, port: node.broker.port })) };
      case 'link':
        for (const link of request.links) this.node(link.from).mesh.link(link.url, link.peerId);
        return { op: 'ok' };
      case 'round':
        await Promise.all([...this.nodes.keys()].map((index) => this.append(index, request.k)));
        return { op: 'sizes', sizes: Object.fromEntries(this.sizes), skipped: 0 };
      case 'write':
        return { op: 'sizes', sizes: Object.fromEntries(this.sizes), skipped: await this.write(request) };
      case 'poll': {
        const heads: Record<number, Record<string, number>> = {};
        const states: Record<number, string> = {};
        const counters: Record<string, number> = {};
        for (const [index, node] of this.nodes) {
          heads[index] = node.mesh.store.have();
          if (request.states) states[index] = createHash('sha256').update(node.mesh.state.canonical()).digest('base64url');
          for (const [k, v] of Object.entries(node.counters.snapshot())) counters[k] = (counters[k] ?? 0) + v;
        }
        return { op: 'poll', heads, states, counters };
      }
      case 'stop': {
        const stops = await Promise.allSettled([...this.nodes.values()].map((node) => Promise.race([
          node.stop(),
          sleep(request.timeoutMs).then(() => { throw new Error(`${node.name} did not stop`); }),
        ])));
        this.nodes.clear();
        return { op: 'stopped', failed: stops.filter((s) => s.status === 'rejected').length };
      }
    }
  }

  private node(index: number): TestMeshNode {
    const node = this.nodes.get(index);
    if (!node) throw new Error(`node ${index} is not in this shard`);
    return node;
  }

  private async append(index: number, k: number): Promise<void> {
    const entry = await this.node(index).mesh.append('reading', reading(k));
    (this.sizes.get(index) as number[])[entry.seq - 1] = encodeEntry(entry).length;
  }

  private async write(request: Extract<ShardRequest, { op: 'write' }>): Promise<number> {
    const mine = [...this.nodes.keys()];
    const busy = new Set<number>();
    const pending = new Set<Promise<void>>();
    const errors: unknown[] = [];
    let skipped = 0;
    const end = request.startAt + request.ms;
    for (let k = 0; errors.length === 0; k++) {
      for (const index of mine) {
        const due = request.startAt + (k * request.total + index) * request.gapMs;
        if (due >= end) {
          await Promise.all(pending);
          if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
          return skipped;
        }
        // Behind schedule, still let I/O run, or no append could finish and every turn would be skipped.
        await (due > Date.now() ? sleep(due - Date.now()) : new Promise<void>((resolve) => setImmediate(resolve)));
        if (busy.has(index)) {
          skipped += 1;
          continue;
        }
        busy.add(index);
        const p = this.append(index, k).catch((err: unknown) => { errors.push(err); }).finally(() => busy.delete(index));
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
    }
    await Promise.all(pending);
    throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
  }
}

if (parentPort) {
  const port = parentPort;
  const shard = new Shard(workerData as ShardData);
  port.on('message', (message: { id: number; request: ShardRequest }) => {
    shard.handle(message.request).then(
      (reply) => port.postMessage({ id: message.id, reply }),
      (err: unknown) => port.postMessage({ id: message.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
    );
  });
}
