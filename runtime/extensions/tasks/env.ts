/** What the requester and provider sides share: the mesh, the stores, the mandate and a per-task lock. */
import type { CommandOutcome, CommandRegistry } from '../../commands/command-registry.js';
import type { Counters } from '../../counters.js';
import type { NodeIdentity } from '../../identity/identity.js';
import type { Logger } from '../../log.js';
import type { Mesh } from '../../mesh/mesh.js';
import type { TaskAgentConfig } from './config.js';
import type { WorkResources } from './kinds.js';
import type { Ledger } from './ledger.js';
import type { SignedMandate } from './mandate.js';
import type { TaskStore } from './task-store.js';
import { encodeDirect, type DirectMessage } from './wire.js';

export interface TaskEnv {
  readonly mesh: Mesh;
  /** The node key: it signs proposals. */
  readonly node: NodeIdentity;
  readonly config: TaskAgentConfig;
  readonly mandate: SignedMandate | undefined;
  readonly store: TaskStore;
  readonly ledger: Ledger;
  readonly counters: Counters;
  readonly logger: Logger;
  readonly resources: WorkResources;
  /** The node's command registry (`pay/credit-check`, `pay/send` live there when payments are on). */
  run(name: string, args: unknown): Promise<CommandOutcome>;
  /** Payments are on (payments helper's commands present): prices above 0 are possible. */
  payments(): boolean;
  now(): number;
  /** Runs `fn` after every earlier step of the same task: two copies of one entry never act twice. */
  serial<T>(task: string, fn: () => Promise<T>): Promise<T>;
}

/** The owner key of a node this one knows (its certificate). */
export function ownerOf(env: TaskEnv, nodeId: string): string | undefined {
  return env.mesh.directory.get(nodeId)?.owner;
}

/** A peer the mandate lets this node deal with (any trusted owner when it lists none). */
export function peerAllowed(env: TaskEnv, nodeId: string): boolean {
  const owners = env.mandate?.mandate.peerOwners ?? [];
  const owner = ownerOf(env, nodeId);
  return owner !== undefined && (owners.length === 0 || owners.includes(owner));
}

export function sendDirect(env: TaskEnv, peer: string, message: DirectMessage): boolean {
  const sent = env.mesh.sendTask(peer, encodeDirect(message));
  env.counters.increment(sent ? `tasks.sent.${message.m}` : 'tasks.sent_no_link');
  return sent;
}

/**
 * Whether payments are on: the registry has `pay/credit-check` and `pay/send`
 * and they are available. Without them tasks run only at price 0.
 */
export function paymentsOn(registry: Pick<CommandRegistry, 'list'>): boolean {
  const specs = registry.list().filter((c) => c.name === 'pay/credit-check' || c.name === 'pay/send');
  return specs.length === 2 && specs.every((c) => c.unavailable?.() === undefined);
}
