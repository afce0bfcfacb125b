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
import { ownerKeyOf, waitFor } from '../../../support/mesh-node.js';

export interface PayNode {
  readonly name: string;
  readonly dir: string;
  readonly nodeId: string;
  node: ApiaryNode;
  /** The proxy other nodes reach this node's broker through. */
  readonly inbound: TcpProxy;
}

export interface PayNodes {
  readonly nodes: Readonly<Record<string, PayNode>>;
  /** Stops and starts a node again on its data dir (its proxy now leads to the new broker). */
  restart(n: PayNode): Promise<void>;
  stopNode(n: PayNode): Promise<void>;
  startNode(n: PayNode): Promise<void>;
  /** Cuts (or heals) every link between the nodes. */
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

export interface PayPair extends Omit<PayNodes, 'nodes'> {
  readonly a: PayNode;
  readonly b: PayNode;
}

/** Payments on; no rules, no shared readings, no recorded questions: the feeds hold payment entries only. */
export async function startPayPair(dir: string, payments: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {},
  more: { a?: Omit<PayNodeConfig, 'payments'>; b?: Omit<PayNodeConfig, 'payments'> } = {}): Promise<PayPair> {
  const bed = await startPayNodes(dir, { a: { ...more.a, payments: payments.a ?? {} }, b: { ...more.b, payments: payments.b ?? {} } });
  return { ...bed, a: bed.nodes.a as PayNode, b: bed.nodes.b as PayNode };
}

/** Extra config of one node: its payments section, and any other sections (tasks, device...). */
export interface PayNodeConfig {
  payments?: Record<string, unknown>;
  /** Merged into the mesh section (retention, intervals). */
  mesh?: Record<string, unknown>;
  extra?: (dir: string) => Record<string, unknown>;
}

/**
 * One payment node's config, as a plain object (also written as a child
 * node's config file: JSON is YAML): payments on; no rules, no shared
 * readings, no recorded questions, so the feed holds payment entries only.
 */
export function payNodeConfig(options: {
  name: string; dir: string; neighbours: readonly { url: string; nodeId: string }[]; owners: readonly string[]; node?: PayNodeConfig;
}): Record<string, unknown> {
  const { payments, mesh, extra } = options.node ?? {};
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
      neighbours: options.neighbours,
      trust: { owners: options.owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
      ...mesh,
    },
    payments: { enabled: true, ...payments },
    ...extra?.(options.dir),
  };
}

export function createPayNode(config: Record<string, unknown>): ApiaryNode {
  return createNode(parseConfig(config), pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' }));
}

/**
 * Nodes of as many owners, each linked to every other through the other's
 * inbound proxy, all trusting all owners.
 */
export async function startPayNodes(dir: string, configs: Readonly<Record<string, PayNodeConfig>>): Promise<PayNodes> {
  const names = Object.keys(configs);
  const dirs = Object.fromEntries(names.map((name) => [name, path.join(dir, name)]));
  const owners = await Promise.all(names.map((name) => ownerKeyOf(dirs[name] as string)));
  const ids: Record<string, string> = {};
  const proxies: Record<string, TcpProxy> = {};
  for (const name of names) {
    ids[name] = (await loadOrCreateIdentity(dirs[name] as string)).identity.nodeId;
    proxies[name] = new TcpProxy();
    await proxies[name].start();
  }
  const make = (name: string): ApiaryNode => createPayNode(payNodeConfig({
    name, dir: dirs[name] as string, owners, node: configs[name],
    neighbours: names.filter((other) => other !== name).map((other) => ({ url: (proxies[other] as TcpProxy).url, nodeId: ids[other] as string })),
  }));
  const nodes: Record<string, PayNode> = Object.fromEntries(names.map((name) => [name, {
    name, dir: dirs[name] as string, nodeId: ids[name] as string, node: make(name), inbound: proxies[name] as TcpProxy,
  }]));
  const all = Object.values(nodes);
  const startNode = async (n: PayNode) => {
    n.node = make(n.name);
    await n.node.start();
    n.inbound.setTarget(n.node.brokerPort as number);
    n.inbound.heal();
  };
  for (const n of all) {
    await n.node.start();
    n.inbound.setTarget(n.node.brokerPort as number);
  }
  const stopNode = async (n: PayNode) => {
    n.inbound.cut(); // closed until the node is back (startNode heals it)
    await n.node.stop();
  };
  return {
    nodes,
    stopNode,
    startNode,
    restart: async (n) => {
      await stopNode(n);
      await startNode(n);
    },
    partition: () => { for (const n of all) n.inbound.cut(); },
    heal: () => { for (const n of all) n.inbound.heal(); },
    close: async () => {
      for (const n of all) await n.node.stop();
      for (const n of all) await n.inbound.stop();
    },
  };
}

/** Runs a command on a node; its result, or throws with its refusal. */
export async function run<T>(n: PayNode, command: string, args: Record<string, unknown>): Promise<T> {
  const outcome = await n.node.commands.run(command, args);
  if (!outcome.ok) throw new Error(`${command}: ${outcome.code} ${outcome.error}`);
  return outcome.result as T;
}

/** Waits until every node of the pair has a link up (`up`), or none. */
export function waitLinks(pair: PayPair, up: boolean, describe?: () => string): Promise<void> {
  const links = (n: PayNode) => n.node.mesh?.linkedPeers().length ?? (up ? 0 : 1);
  return waitFor(() => [pair.a, pair.b].every((n) => (links(n) > 0) === up), 20_000, describe);
}
