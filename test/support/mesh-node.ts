/**
 * A mesh node without a device, for tests: its own aedes broker on a
 * loopback port, its own data dir, identity, owner and mesh, exactly as
 * ApiaryNode builds them (createMesh), from a real config.
 */
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import pino from 'pino';
import { EmbeddedBroker, type EmbeddedBrokerTls } from '../../runtime/broker/embedded-broker.js';
import { configSchema, type ConfigInput } from '../../runtime/config/schema.js';
import { Counters } from '../../runtime/counters.js';
import { loadOrCreateIdentity, loadOrCreateKeyFile, type NodeIdentity } from '../../runtime/identity/identity.js';
import { createMesh, type MeshParts } from '../../runtime/mesh/create-mesh.js';
import { makeLinkToken } from '../../runtime/mesh/link-token.js';

export interface TestMeshNode extends MeshParts {
  readonly name: string;
  readonly dir: string;
  readonly broker: EmbeddedBroker;
  readonly counters: Counters;
  readonly node: NodeIdentity;
  stop(): Promise<void>;
}

/** Makes (or loads) the owner key of a test node, so trust lists can be written before any node starts. */
export async function ownerKeyOf(dir: string): Promise<string> {
  return (await loadOrCreateKeyFile(path.join(dir, 'owner.json'))).identity.publicKey;
}

export async function startMeshNode(options: { name: string; dir: string; trustedOwners: string[]; port?: number; mesh?: ConfigInput['mesh']; broker?: ConfigInput['broker']; storage?: ConfigInput['storage']; tls?: EmbeddedBrokerTls; tlsListener?: EmbeddedBrokerTls }): Promise<TestMeshNode> {
  const config = configSchema.parse({
    node: { name: options.name, dataDir: options.dir },
    ...(options.storage ? { storage: options.storage } : {}),
    broker: { ...options.broker, host: '127.0.0.1', port: options.port ?? 0 },
    mesh: {
      commitInterval: '20ms',
      antiEntropyInterval: '2s',
      ...options.mesh,
      trust: { owners: options.trustedOwners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
    },
  });
  const counters = new Counters();
  const logger = pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' });
  const { identity: node } = await loadOrCreateIdentity(options.dir);
  const parts = await createMesh(config, node, counters, logger);
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: options.port ?? 0, logger, counters, access: parts.access, ...(options.tls ? { tls: options.tls } : {}),
    ...(options.tlsListener ? { tlsListener: { host: '127.0.0.1', port: 0, tls: options.tlsListener } } : {}) });
  await broker.start();
  await parts.mesh.start(broker);
  return {
    ...parts, name: options.name, dir: options.dir, broker, counters, node,
    stop: async () => {
      await parts.mesh.stop();
      await broker.stop();
    },
  };
}

/**
 * Two nodes in `dir`/a and `dir`/b that trust each other's owners; a lists b
 * as its neighbour (b links back by dial-back). Both go into `nodes`.
 */
export async function startLinkedPair(dir: string, nodes: TestMeshNode[]): Promise<{ a: TestMeshNode; b: TestMeshNode }> {
  const [dirA, dirB] = ['a', 'b'].map((n) => path.join(dir, n)) as [string, string];
  const owners = await Promise.all([dirA, dirB].map(ownerKeyOf));
  const b = await startMeshNode({ name: 'b', dir: dirB, trustedOwners: owners });
  nodes.push(b);
  const a = await startMeshNode({ name: 'a', dir: dirA, trustedOwners: owners, mesh: { neighbours: [{ url: b.broker.url, nodeId: b.node.nodeId }] } });
  nodes.push(a);
  return { a, b };
}

/** Polls until `check` holds (or throws after `timeoutMs`, with `describe()` in the message). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A fresh temp dir per test, and the nodes a test starts in it: every node
 * still in `nodes` is stopped, and the dir removed, after each test. Call it
 * inside a describe block. A test that stops a node itself takes it out of
 * `nodes` first.
 */
export function meshTestBed(prefix: string): { dir: () => string; nodes: TestMeshNode[]; status: () => string } {
  let dir = '';
  const nodes: TestMeshNode[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), `apiary-${prefix}-`));
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    nodes,
    status: () => JSON.stringify(nodes.map((n) => ({ name: n.name, status: n.mesh.status(), counters: n.counters.snapshot() }))),
  };
}

/** A UDP port free on 127.0.0.1 now: mDNS tests use their own, so nothing leaves loopback or meets another test. */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * An MQTT connection to `victim`'s broker as node `who` (a fresh link
 * token, and the node's own link client id, the only one its token is
 * accepted with: it replaces `who`'s own link there): for tests that send
 * what `who`'s own node would not. The caller ends it.
 */
export function connectAs(who: TestMeshNode, victim: TestMeshNode, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
  return connectAsync(victim.broker.url, {
    protocolVersion: 4, clientId: `apiary-${who.node.nodeId}`, username: who.node.nodeId,
    password: makeLinkToken(who.identity, victim.node.nodeId, Date.now(), `tcp:127.0.0.1:${victim.broker.port}`).password, reconnectPeriod: 0,
    ...extra,
  });
}
