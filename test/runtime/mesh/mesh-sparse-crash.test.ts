/**
 * A sparse node (the CLI, a child process; mesh.replicate keeps only alerts)
 * is killed with SIGKILL while its peer writes readings and alerts.
 * Restarted on the same data dir, it takes up the peer's chain where its
 * files say it was (the heads file may lag: what came after is asked for
 * again and chains on), and keeps exactly the peer's alerts, each once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../runtime/cli/demo/mesh-demo.js';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity } from '../../../runtime/identity/identity.js';
import type { FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { RelayCache } from '../../../runtime/mesh/relay-cache.js';
import { KeepRules } from '../../../runtime/mesh/sparse-replication.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

describe('a sparse node killed mid-traffic', () => {
  let dir: string;
  let peer: TestMeshNode;
  let running: NodeProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-sparse-crash-'));
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await peer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('restarts where its files say, follows the peer\'s chain on, and holds exactly its alerts, each once', async () => {
    const childDir = path.join(dir, 'child');
    const child = (await loadOrCreateIdentity(childDir)).identity;
    const childOwner = await ownerKeyOf(childDir);
    const peerOwner = await ownerKeyOf(path.join(dir, 'peer'));
    peer = await startMeshNode({ name: 'peer', dir: path.join(dir, 'peer'), trustedOwners: [peerOwner, childOwner] });
    const childPort = await freePort();
    await writeFile(path.join(dir, 'apiary.yaml'), `
node: { name: child }
device:
  simulation: { speed: 600 }
  sensors: { temperature: { interval: 10s }, humidity: { interval: 10s }, weight: { interval: 10s }, sound: { interval: 1m } }
log: { level: warn }
mesh:
  commitInterval: 50ms
  antiEntropyInterval: 2s
  neighbours: [{ url: "mqtt://127.0.0.1:${peer.broker.port}", nodeId: ${peer.node.nodeId} }]
  trust: { owners: [{ name: peer-owner, publicKey: "${peerOwner}" }] }
  replicate: [{ origins: [${peer.node.nodeId}], types: ["alert*"] }]
`);
    const args = ['--config', path.join(dir, 'apiary.yaml'), '--data-dir', childDir, '--port', String(childPort)];
    running = await startNodeProcess(args);
    peer.mesh.link(`mqtt://127.0.0.1:${childPort}`, child.nodeId);
    const childHead = async () => {
      const reply = await requestNode({ url: `mqtt://127.0.0.1:${childPort}`, topicPrefix: 'apiary', nodeId: child.nodeId, command: 'status' });
      const feeds = ((reply.result as { mesh?: { feeds?: { origin: string; seq: number }[] } }).mesh?.feeds) ?? [];
      return feeds.find((f) => f.origin === peer.node.nodeId)?.seq ?? 0;
    };

    // The peer writes all along: one alert in five.
    let peerWrites = true;
    const writer = (async () => {
      for (let k = 1; peerWrites; k++) {
        await peer.mesh.append(k % 5 === 0 ? 'alert' : 'reading', { k });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await waitFor(async () => (await childHead().catch(() => 0)) >= 60, 30_000, () => running?.output() ?? '');
    running.child.kill('SIGKILL');
    expect((await running.exited).signal).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the peer writes on while the child is down
    running = await startNodeProcess(args);
    const restartedAt = peer.mesh.store.head(peer.node.nodeId).seq;
    await waitFor(async () => (await childHead().catch(() => 0)) >= restartedAt + 20, 30_000, () => running?.output() ?? '');
    peerWrites = false;
    await writer;
    const peerHead = peer.mesh.store.head(peer.node.nodeId).seq;
    await waitFor(async () => (await childHead()) === peerHead, 20_000);
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = undefined;

    // The child's files: the peer's alerts, every one, once, in order; no entry of the peer's whole feed.
    const counters = new Counters();
    const store = new FeedStore({
      dir: path.join(childDir, 'mesh', 'feeds'), counters, segmentBytes: 1024 * 1024, maxBytesPerOrigin: 16 * 1024 * 1024,
      replication: new KeepRules([{ origins: [peer.node.nodeId], types: ['alert*'] }], child.nodeId, () => undefined),
      sparse: { dir: path.join(childDir, 'mesh', 'sparse'), relay: new RelayCache({ maxBytes: 64 * 1024, counters }) },
    });
    await store.open();
    try {
      expect(store.head(peer.node.nodeId).seq).toBe(peerHead);
      const kept: FeedEntry[] = [];
      for await (const e of store.read(peer.node.nodeId)) kept.push(e);
      const alerts = Array.from({ length: Math.floor(peerHead / 5) }, (_, i) => 5 * (i + 1));
      expect(kept.map((e) => e.seq)).toEqual(alerts);
      expect(kept.every((e) => e.type === 'alert')).toBe(true);
    } finally {
      await store.close();
    }
    expect(peer.counters.get('feeds.fork')).toBe(0);
  }, 120_000);
});
