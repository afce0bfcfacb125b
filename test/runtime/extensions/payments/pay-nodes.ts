/**
 * Two real nodes of two owners for the payment tests: each its own data dir,
 * owner key, broker on a loopback port and feed, linked to each other through
 * fault-injecting TCP proxies (cut to partition them, heal to reconnect), and
 * restartable on the same data dir.
 */
import path from 'node:path';
import { pino } from 'pino';
import { createNode } from '../../../../runtime/apps/index.js';
import { TcpProxy } from '../../../../runtime/cli/demo/link-proxy.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { loadOrCreateIdentity } from '../../../../runtime/identity/identity.js';
import { ownerKeyOf } from '../../../support/mesh-node.js';

export interface PayNode {
  readonly name: string;
  readonly dir: string;
  readonly nodeId: string;
  node: ApiaryNode;
  /** The proxy other nodes reach this node's broker through. */
  readonly inbound: TcpProxy;
}

export interface PayPair {
  readonly a: PayNode;
  readonly b: PayNode;
  /** Stops and starts a node again on its data dir (its proxy now leads to the new broker). */
  restart(n: PayNode): Promise<void>;
  stopNode(n: PayNode): Promise<void>;
  startNode(n: PayNode): Promise<void>;
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

/** What a test may change in a node's config besides payments: the mesh section (merged) and storage. */
export interface NodeOverrides {
  readonly mesh?: Record<string, unknown>;
  readonly storage?: Record<string, unknown>;
}

/**
 * A payment node's config, as a plain object (also written as a child node's
 * config file: JSON is YAML). Payments on; no rules, no shared readings, no
 * recorded questions: the feed holds payment entries only.
 */
export function payNodeConfig(options: {
  name: string; dir: string; neighbour: { url: string; nodeId: string }; owners: readonly string[];
  payments?: Record<string, unknown>; overrides?: NodeOverrides;
}): Record<string, unknown> {
  return {
    app: 'sensor-node',
    node: { name: options.name, dataDir: options.dir },
    broker: { port: 0 },
    homeAssistant: { enabled: false },
    device: { simulation: { speed: 1 } },
    decisions: [],
    ask: { record: 'off' },
    mesh: {
      share: [], commitInterval: '20ms', antiEntropyInterval: '1s', acceptRelayedPlainLinks: true,
      neighbours: [options.neighbour],
      trust: { owners: options.owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
      ...options.overrides?.mesh,
    },
    ...(options.overrides?.storage ? { storage: options.overrides.storage } : {}),
    payments: { enabled: true, ...options.payments },
  };
}

export function createPayNode(config: Record<string, unknown>): ApiaryNode {
  return createNode(parseConfig(config), pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' }));
}

export async function startPayPair(dir: string, payments: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {},
  overrides: { a?: NodeOverrides; b?: NodeOverrides } = {}): Promise<PayPair> {
  const dirs = { a: path.join(dir, 'a'), b: path.join(dir, 'b') };
  const owners = [await ownerKeyOf(dirs.a), await ownerKeyOf(dirs.b)];
  const ids = { a: (await loadOrCreateIdentity(dirs.a)).identity.nodeId, b: (await loadOrCreateIdentity(dirs.b)).identity.nodeId };
  const proxies = { a: new TcpProxy(), b: new TcpProxy() };
  await proxies.a.start();
  await proxies.b.start();
  const make = (name: 'a' | 'b'): ApiaryNode => {
    const other = name === 'a' ? 'b' : 'a';
    return createPayNode(payNodeConfig({
      name, dir: dirs[name], neighbour: { url: proxies[other].url, nodeId: ids[other] }, owners, payments: payments[name], overrides: overrides[name],
    }));
  };
  const nodes = {
    a: { name: 'a', dir: dirs.a, nodeId: ids.a, node: make('a'), inbound: proxies.a },
    b: { name: 'b', dir: dirs.b, nodeId: ids.b, node: make('b'), inbound: proxies.b },
  };
  const startNode = async (n: PayNode) => {
    n.node = make(n.name as 'a' | 'b');
    await n.node.start();
    n.inbound.setTarget(n.node.brokerPort as number);
    n.inbound.heal();
  };
  for (const n of [nodes.a, nodes.b]) {
    await n.node.start();
    n.inbound.setTarget(n.node.brokerPort as number);
  }
  const stopNode = async (n: PayNode) => {
    n.inbound.cut(); // closed until the node is back (startNode heals it)
    await n.node.stop();
  };
  return {
    ...nodes,
    stopNode,
    startNode,
    restart: async (n) => {
      await stopNode(n);
      await startNode(n);
    },
    partition: () => { proxies.a.cut(); proxies.b.cut(); },
    heal: () => { proxies.a.heal(); proxies.b.heal(); },
    close: async () => {
      for (const n of [nodes.a, nodes.b]) await n.node.stop();
      await proxies.a.stop();
      await proxies.b.stop();
    },
  };
}

/** Runs a command on a node; its result, or throws with its refusal. */
export async function run<T>(n: PayNode, command: string, args: Record<string, unknown>): Promise<T> {
  const outcome = await n.node.commands.run(command, args);
  if (!outcome.ok) throw new Error(`${command}: ${outcome.code} ${outcome.error}`);
  return outcome.result as T;
}
