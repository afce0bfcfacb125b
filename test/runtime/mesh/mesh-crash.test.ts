/**
 * A whole node (the CLI, a child process) linked to a peer is killed with
 * SIGKILL in the middle of traffic, while the peer keeps writing. Restarted
 * on the same data dir, it continues its own feed without a fork, and both
 * sides catch up: nothing is lost either way. A sparse node (mesh.replicate
 * keeps only alerts) killed the same way takes up the peer's chain where its
 * files say it was (its heads file may lag: what came after is asked for
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
import { entryHash, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { RelayCache } from '../../../runtime/mesh/relay-cache.js';
import { KeepRules } from '../../../runtime/mesh/sparse-replication.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

describe('a mesh node killed mid-traffic', () => {
  let dir: string;
  const peers: TestMeshNode[] = [];
  let running: NodeProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-mesh-crash-'));
  });
  afterAll(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    await Promise.all(peers.map((p) => p.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  /** A peer (in-process) and a child node's config (the CLI) linked to it, in `dir`/`name`; `mesh` is added to the child's mesh section. */
  async function setUp(name: string, mesh = ''): Promise<{ peer: TestMeshNode; child: { nodeId: string }; childDir: string; childPort: number; args: string[] }> {
    const base = path.join(dir, name);
    const childDir = path.join(base, 'child');
    const child = (await loadOrCreateIdentity(childDir)).identity;
    const childOwner = await ownerKeyOf(childDir); // default mesh.owner.keyFile: <dataDir>/owner.json
    const peerOwner = await ownerKeyOf(path.join(base, 'peer'));
    const peer = await startMeshNode({ name: 'peer', dir: path.join(base, 'peer'), trustedOwners: [peerOwner, childOwner] });
    peers.push(peer);
    const childPort = await freePort();
    await writeFile(path.join(base, 'apiary.yaml'), `
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
${mesh}`);
    return { peer, child, childDir, childPort, args: ['--config', path.join(base, 'apiary.yaml'), '--data-dir', childDir, '--port', String(childPort)] };
  }

  /** The seq of `origin` the child holds, asked over MQTT (its status command). */
  async function childHead(childPort: number, childId: string, origin: string): Promise<number> {
    const reply = await requestNode({ url: `mqtt://127.0.0.1:${childPort}`, topicPrefix: 'apiary', nodeId: childId, command: 'status' });
    const feeds = ((reply.result as { mesh?: { feeds?: { origin: string; seq: number }[] } }).mesh?.feeds) ?? [];
    return feeds.find((f) => f.origin === origin)?.seq ?? 0;
  }

  /** Stops the peer's writes, waits for the child to hold all of its feed (live, or by catch-up), then stops the child cleanly; the peer's head. */
  async function finish(peer: TestMeshNode, childId: string, childPort: number, stopWriting: () => Promise<void>): Promise<number> {
    await stopWriting();
    const peerHead = peer.mesh.store.head(peer.node.nodeId).seq;
    await waitFor(async () => (await childHead(childPort, childId, peer.node.nodeId)) === peerHead, 20_000);
    running?.child.kill('SIGTERM');
    expect((await running?.exited)?.code).toBe(0);
    running = undefined;
    return peerHead;
  }

  it('restarts, continues its feed without a fork, and both sides catch up', async () => {
    const { peer, child, childDir, childPort, args } = await setUp('whole');
    running = await startNodeProcess(args);
    peer.mesh.link(`mqtt://127.0.0.1:${childPort}`, child.nodeId);

    // The peer writes all along, the child's sensors too.
    let peerWrites = true;
    const writer = (async () => {
      for (let k = 0; peerWrites; k++) {
        await peer.mesh.append('reading', { k });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitFor(() => peer.mesh.store.head(child.nodeId).seq >= 40, 30_000, () => running?.output() ?? '');
    running.child.kill('SIGKILL');
    expect((await running.exited).signal).toBe('SIGKILL');
    const heldAtKill = peer.mesh.store.head(child.nodeId).seq;
    const hashesAtKill: string[] = [];
    for await (const e of peer.mesh.store.read(child.nodeId)) hashesAtKill.push(entryHash(e));

    await new Promise((resolve) => setTimeout(resolve, 500)); // the peer writes on while the child is down
    running = await startNodeProcess(args);
    await waitFor(() => peer.mesh.store.head(child.nodeId).seq >= heldAtKill + 20, 30_000, () => JSON.stringify(peer.counters.snapshot()));
    const peerHead = await finish(peer, child.nodeId, childPort, async () => {
      peerWrites = false;
      await writer;
    });

    expect(peer.counters.get('feeds.fork')).toBe(0);
    const counters = new Counters();
    const store = new FeedStore({ dir: path.join(childDir, 'mesh', 'feeds'), counters, segmentBytes: 1024 * 1024, maxBytesPerOrigin: 16 * 1024 * 1024 });
    await store.open();
    try {
      // The child kept every entry the peer had from it before the kill, identical (no second history).
      const childOwn: string[] = [];
      for await (const e of store.read(child.nodeId, 1, heldAtKill)) childOwn.push(entryHash(e));
      expect(childOwn).toEqual(hashesAtKill);
      // And it caught up with everything the peer wrote, in order, once.
      const seqs: number[] = [];
      for await (const e of store.read(peer.node.nodeId)) seqs.push(e.seq);
      expect(seqs).toEqual(Array.from({ length: peerHead }, (_, i) => i + 1));
    } finally {
      await store.close();
    }
  }, 90_000);

  it('a sparse node restarts where its files say, follows the peer\'s chain on, and holds exactly its alerts, each once', async () => {
    const { peer, child, childDir, childPort, args } = await setUp('sparse', '  replicate: [{ types: ["alert*"] }]\n');
    running = await startNodeProcess(args);
    peer.mesh.link(`mqtt://127.0.0.1:${childPort}`, child.nodeId);

    // The peer writes all along: one alert in five.
    let peerWrites = true;
    const writer = (async () => {
      for (let k = 1; peerWrites; k++) {
        await peer.mesh.append(k % 5 === 0 ? 'alert' : 'reading', { k });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await waitFor(async () => (await childHead(childPort, child.nodeId, peer.node.nodeId).catch(() => 0)) >= 60, 30_000, () => running?.output() ?? '');
    running.child.kill('SIGKILL');
    expect((await running.exited).signal).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the peer writes on while the child is down
    running = await startNodeProcess(args);
    const restartedAt = peer.mesh.store.head(peer.node.nodeId).seq;
    await waitFor(async () => (await childHead(childPort, child.nodeId, peer.node.nodeId).catch(() => 0)) >= restartedAt + 20, 30_000, () => running?.output() ?? '');
    const peerHead = await finish(peer, child.nodeId, childPort, async () => {
      peerWrites = false;
      await writer;
    });

    // The child's files: the peer's alerts, every one, once, in order; no entry of the peer's whole feed.
    const counters = new Counters();
    const store = new FeedStore({
      dir: path.join(childDir, 'mesh', 'feeds'), counters, segmentBytes: 1024 * 1024, maxBytesPerOrigin: 16 * 1024 * 1024,
      replication: new KeepRules([{ types: ['alert*'] }], child.nodeId, () => undefined),
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
