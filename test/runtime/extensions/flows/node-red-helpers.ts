/** Shared by the flows tests: a free loopback port, a node with flows on, and Node-RED's admin API. */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { pino } from 'pino';
import { createNode } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { FlowsStatus } from '../../../../runtime/extensions/flows/supervisor.js';
import { BUILT_CLI } from '../../../support/global-setup.js';
import { waitFor } from '../../../support/mesh-node.js';

export const silent = pino({ level: 'silent' });

/** A loopback port nothing listens on (bound, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A beehive node (simulated, fast) with flows on; `flows` is merged into the section. */
export function flowsNode(dataDir: string, flows: Record<string, unknown>): ApiaryNode {
  const config = parseConfig({
    node: { dataDir },
    broker: { port: 0 },
    device: { simulation: { speed: 600, preSwarm: '30s', swarm: '3m' } },
    flows: { enabled: true, ...flows },
  });
  return createNode(config, silent);
}

export async function flowsStatus(node: ApiaryNode): Promise<FlowsStatus> {
  return (await node.status()).flows as FlowsStatus;
}

export async function waitForFlows(node: ApiaryNode, done: (s: FlowsStatus) => boolean, what: string, timeoutMs = 60_000): Promise<FlowsStatus> {
  let last: FlowsStatus | undefined;
  await waitFor(async () => done(last = await flowsStatus(node)), timeoutMs, () => `${what}; flows status: ${JSON.stringify(last)}`);
  return last as FlowsStatus;
}

/** Node-RED's admin API, with a bearer token when given. */
export async function admin(url: string, route: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('Authorization', `Bearer ${init.token}`);
  return fetch(new URL(route, url), { ...init, headers });
}

/** `apiary flows passwd` as a user runs it, the password on stdin. */
export async function passwd(dataDir: string, password: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BUILT_CLI, 'flows', 'passwd', '--data-dir', dataDir, '--user', 'keeper'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  child.stdin.end(`${password}\n`);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, out };
}

/** A token from Node-RED's adminAuth (the editor's own login). */
export async function login(url: string, username: string, password: string): Promise<Response> {
  return admin(url, 'auth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', username, password }),
  });
}

/** Replaces every flow (a full deploy) and checks Node-RED took it. */
export async function deploy(url: string, flows: unknown[], token?: string): Promise<void> {
  const res = await admin(url, 'flows', {
    method: 'POST',
    body: JSON.stringify(flows),
    headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
    ...(token !== undefined ? { token } : {}),
  });
  if (res.status !== 204 && res.status !== 200) throw new Error(`POST /flows answered ${res.status}: ${await res.text()}`);
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
