/**
 * The bundled palette in a real Node-RED 4.1 runtime, found as Node-RED finds
 * an installed package (its package.json "node-red" section, through
 * nodesDir): every node type registered, its editor HTML and markdown help
 * served beside the bundle, its examples listed. The examples are valid flow
 * JSON that use only node types this runtime has, and they deploy and start
 * against a real Apiary node.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_TYPES } from '../../../flows/node-red-apiary/src/node-types.js';
import { loadPalette, PALETTE_DIR, startApiaryNode, waitFor, type RunningNode } from './support.js';

const require = createRequire(import.meta.url);

interface RedRuntime {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: http.RequestListener;
  nodes: { getNode(id: string): unknown };
}

interface NodeSet { module: string; types: string[]; enabled: boolean; loaded: boolean; err?: string }
type FlowNode = { id: string; type: string; z?: string; [key: string]: unknown };

describe('the bundled palette in a real Node-RED runtime', () => {
  let userDir: string;
  let server: http.Server;
  let base: string;
  let RED: RedRuntime;
  let apiary: RunningNode;

  const get = async (url: string, accept = 'application/json') => fetch(`${base}${url}`, { headers: { accept } });

  beforeAll(async () => {
    apiary = await startApiaryNode();
    userDir = await mkdtemp(path.join(os.tmpdir(), 'apiary-node-red-user-'));
    RED = require('node-red') as RedRuntime;
    server = http.createServer((req, res) => RED.httpAdmin(req, res));
    RED.init(server, {
      userDir,
      nodesDir: [PALETTE_DIR],
      httpAdminRoot: '/',
      httpNodeRoot: false,
      logging: { console: { level: 'off' } },
      telemetry: { enabled: false },
      editorTheme: { tours: false, palette: { catalogues: [] } },
      externalModules: { palette: { allowInstall: false } },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await RED.start();
  });

  afterAll(async () => {
    await RED?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await apiary?.stop();
    await rm(userDir, { recursive: true, force: true });
  });

  it('registers every node type of the package, from its package.json', async () => {
    // A node file's module.exports is the function Node-RED calls.
    expect(loadPalette()).toBeTypeOf('function');
    const sets = (await (await get('/nodes')).json()) as NodeSet[];
    const ours = sets.filter((s) => s.module === '@apiary/node-red-apiary');
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ enabled: true, version: '0.1.0' });
    expect(ours[0]!.err).toBeUndefined();
    expect([...ours[0]!.types].sort()).toEqual([...NODE_TYPES].sort());
  });

  it('serves the editor HTML with markdown help (Inputs/Outputs) for every node type', async () => {
    const html = await (await get('/nodes', 'text/html')).text();
    for (const type of NODE_TYPES) {
      expect(html).toContain(`RED.nodes.registerType('${type}'`);
      expect(html).toContain(`<script type="text/html" data-template-name="${type}">`);
      const help = new RegExp(`<script type="text/markdown" data-help-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1] ?? '';
      expect(help, `help of ${type}`).not.toBe('');
      if (type !== 'apiary-node') expect(help, `help of ${type}`).toMatch(/### Outputs\n\n: payload \(\w+\)/);
    }
    expect(html).toContain("category: 'Apiary'");
  });

  it('lists the examples, which are flow JSON using only node types this runtime has, and deploy and start', async () => {
    const sets = (await (await get('/nodes')).json()) as NodeSet[];
    const known = new Set(['tab', ...sets.flatMap((s) => s.types)]);
    const files = (await readdir(path.join(PALETTE_DIR, 'examples'))).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThanOrEqual(4);
    // What the editor's Import > Examples menu lists for the package.
    const listed = JSON.stringify(await (await get('/library/examples/flows/@apiary/node-red-apiary/')).json());
    const all = new Map<string, FlowNode>();
    for (const file of files) {
      const flow = JSON.parse(await readFile(path.join(PALETTE_DIR, 'examples', file), 'utf8')) as FlowNode[];
      expect(Array.isArray(flow), file).toBe(true);
      for (const node of flow) {
        expect(known.has(node.type), `${file}: node type ${node.type}`).toBe(true);
        for (const wires of (node.wires as string[][] | undefined) ?? []) for (const to of wires) expect(flow.some((n) => n.id === to), `${file}: wire to ${to}`).toBe(true);
        if (typeof node.server === 'string') expect(flow.some((n) => n.id === node.server && n.type === 'apiary-node'), `${file}: server of ${node.id}`).toBe(true);
        all.set(node.id, node);
      }
      expect(listed, 'the examples listed by the editor\'s import menu').toContain(`{"fn":"${file.replace(/\.json$/, '')}"}`);
    }
    // Deployed on one tab, the config node pointed at a real node: every node is created (no missing type).
    const tab: FlowNode = { id: 'examplestab', type: 'tab', label: 'examples' };
    const flows = [tab, ...[...all.values()].map((n) => (n.type === 'apiary-node' ? { ...n, port: String(apiary.node.brokerPort) } : { ...n, z: tab.id }))];
    const deploy = await fetch(`${base}/flows`, { method: 'POST', headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full' }, body: JSON.stringify(flows) });
    expect(deploy.status, await deploy.text()).toBe(204);
    await waitFor(() => [...all.keys()].every((id) => RED.nodes.getNode(id) !== null), 'every example node started');
  });
});
