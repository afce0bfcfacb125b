/**
 * Where questions are kept (`ask.record`), and what a node without a mesh or
 * without a swarm model says: real sensor nodes (no models), real feeds on disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import type { ConfigInput } from '../../../../runtime/config/schema.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { AskReply } from '../../../../runtime/extensions/ask/commands.js';
import { QUESTION_ENTRY_TYPE } from '../../../../runtime/extensions/ask/index.js';
import { waitFor } from '../../../support/mesh-node.js';

describe('ask.record, and nodes without a mesh or a swarm model', () => {
  let dir: string;
  const nodes: ApiaryNode[] = [];

  const start = async (name: string, extra: Partial<ConfigInput>): Promise<ApiaryNode> => {
    const node = createNode(parseConfig({
      app: 'sensor-node',
      node: { dataDir: path.join(dir, name) },
      broker: { port: 0 },
      homeAssistant: { enabled: false },
      device: { simulation: { speed: 600 } },
      ...extra,
    }), pino({ level: 'silent' }));
    nodes.push(node);
    await node.start();
    return node;
  };
  const ask = async (node: ApiaryNode, question: string): Promise<AskReply> => {
    const outcome = await node.commands.run('ask', { question });
    if (!outcome.ok) throw new Error(outcome.error);
    return outcome.result as AskReply;
  };
  /** The types of this node's own feed entries, as stored. */
  const ownEntryTypes = async (node: ApiaryNode): Promise<{ stored: string[]; read: string[] }> => {
    const mesh = node.mesh;
    if (!mesh) throw new Error('no mesh');
    const stored: string[] = [];
    const read: string[] = [];
    for await (const entry of mesh.store.read(node.nodeId, 1)) {
      stored.push(entry.type);
      read.push(mesh.readEntry(entry)?.type ?? '?');
    }
    return { stored, read };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-ask-record-'));
  });

  afterAll(async () => {
    for (const node of nodes) await node.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('shared: the question goes into the feed as a plain entry any trusted node can read', async () => {
    const node = await start('shared', { ask: { record: 'shared' } });
    const reply = await ask(node, 'what is the dew point');
    expect(reply.intent).toBe('reading');
    await waitFor(async () => (await ownEntryTypes(node)).stored.includes(QUESTION_ENTRY_TYPE), 10_000, () => 'a plain question entry');
  });

  it('off: nothing is kept', async () => {
    const node = await start('off', { ask: { record: 'off' } });
    const reply = await ask(node, 'how is the hive');
    expect(reply.intent).toBe('hive-status');
    // A decision is always sealed into the feed: wait for the feed to have something, then look for a question.
    await ask(node, 'how is the hive');
    await waitFor(async () => (await ownEntryTypes(node)).stored.length > 0, 20_000, () => 'any own feed entry');
    expect((await ownEntryTypes(node)).read).not.toContain(QUESTION_ENTRY_TYPE);
  });

  it('with the mesh off: the neighbours question is answered so, nothing is recorded, and mesh/decisions is unavailable', async () => {
    const node = await start('alone', { mesh: { enabled: false } });
    expect(node.mesh).toBeUndefined();
    expect((await ask(node, "what do the neighbours' hives say")).answer).toBe('The mesh is off on this node, so I hear nothing from neighbours.');
    expect(await node.commands.run('mesh/decisions', {})).toMatchObject({ ok: false, error: expect.stringContaining('the mesh is off on this node (mesh.enabled)') as string });
  });

  it('with no swarm model or rule: "is it going to swarm?" is not understood; a rule that never fired says so', async () => {
    const node = nodes[0] as ApiaryNode;
    expect((await ask(node, 'is it going to swarm?')).answer).toMatch(/^I don't know that\. You can ask: how is the hive, how heavy is it, what is the temperature, /);
    expect((await ask(node, 'why condensation risk')).answer).toBe('The condensation risk rule has raised nothing since the node started.');
  });
});
