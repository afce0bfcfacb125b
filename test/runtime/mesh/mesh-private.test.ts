/**
 * A private entry crosses a relay: the relay verifies, stores and forwards
 * it, but holds ciphertext only; the recipient opens it.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

describe('private entries', () => {
  let dir: string;
  let nodes: TestMeshNode[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-private-'));
    const dirs = ['sender', 'relay', 'recipient'].map((n) => path.join(dir, n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    nodes = await Promise.all(dirs.map((d, i) => startMeshNode({ name: ['sender', 'relay', 'recipient'][i] ?? '', dir: d, trustedOwners: owners })));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it('reach only their recipients, through a relay that sees ciphertext only', async () => {
    const [sender, relay, recipient] = nodes as [TestMeshNode, TestMeshNode, TestMeshNode];
    // A line: sender <-> relay <-> recipient; the sender has no link to the recipient.
    const url = (n: TestMeshNode) => `mqtt://127.0.0.1:${n.broker.port}`;
    sender.mesh.link(url(relay), relay.node.nodeId);
    relay.mesh.link(url(sender), sender.node.nodeId);
    relay.mesh.link(url(recipient), recipient.node.nodeId);
    recipient.mesh.link(url(relay), relay.node.nodeId);
    // The sender needs the recipient's certificate (its X25519 key) to seal for it: it arrives with the recipient's first entry.
    await recipient.mesh.append('reading', { hello: true });
    await waitFor(() => sender.mesh.directory.get(recipient.node.nodeId) !== undefined, 10_000);

    const opened: unknown[] = [];
    recipient.mesh.on('private', (m) => opened.push(m));
    const secret = 'queen-cell-count-7';
    await sender.mesh.appendPrivate('reading', { note: secret }, [recipient.node.nodeId]);
    await waitFor(() => opened.length === 1, 10_000, () => JSON.stringify([relay.counters.snapshot(), recipient.counters.snapshot()]));
    expect(opened[0]).toMatchObject({ origin: sender.node.nodeId, seq: 1, type: 'reading', body: { note: secret } });
    expect(relay.counters.get('mesh.private_relayed')).toBe(1);
    expect(relay.counters.get('mesh.private_opened')).toBe(0);
    // Nothing the relay wrote to disk contains the secret.
    for (const file of await filesUnder(relay.dir)) expect((await readFile(file)).includes(secret)).toBe(false);
  });
});
