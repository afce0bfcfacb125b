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

/** Payments on; no rules, no shared readings, no recorded questions: the feeds hold payment entries only. */
export async function startPayPair(dir: string, payments: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {}): Promise<PayPair> {
  const dirs = { a: path.join(dir, 'a'), b: path.join(dir, 'b') };
  const owners = [await ownerKeyOf(dirs.a), await ownerKeyOf(dirs.b)];
  const ids = { a: (await loadOrCreateIdentity(dirs.a)).identity.nodeId, b: (await loadOrCreateIdentity(dirs.b)).identity.nodeId };
  const proxies = { a: new TcpProxy(), b: new TcpProxy() };
  await proxies.a.start();
  await proxies.b.start();
  const make = (name: 'a' | 'b'): ApiaryNode => {
    const other = name === 'a' ? 'b' : 'a';
    return createNode(parseConfig({
      app: 'sensor-node',
      node: { name, dataDir: dirs[name] },
      broker: { port: 0 },
      homeAssistant: { enabled: false },
      device: { simulation: { speed: 1 } },
      decisions: [],
      ask: { record: 'off' },
      mesh: {
        share: [], commitInterval: '20ms', antiEntropyInterval: '1s', acceptRelayedPlainLinks: true,
        neighbours: [{ url: proxies[other].url, nodeId: ids[other] }],
        trust: { owners: owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
      },
      payments: { enabled: true, ...payments[name] },
    }), pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' }));
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
