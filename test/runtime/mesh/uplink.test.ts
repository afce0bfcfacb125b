/**
 * The uplink against a real external broker (Debian's mosquitto, a child
 * process), observed by a real MQTT.js subscriber: entries of a mesh node's
 * feed reach the broker, and none is lost while the broker is away or the
 * uplink restarts (at least once: duplicates allowed, gaps never).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { loadOrCreateIdentity } from '../../../runtime/identity/identity.js';
import { entryHash, signEntry, type FeedEntry } from '../../../runtime/mesh/feed-entry.js';
import { FeedStore } from '../../../runtime/mesh/feed-store.js';
import { Uplink, type UplinkOptions } from '../../../runtime/mesh/uplink.js';
import { RelayCache } from '../../../runtime/mesh/relay-cache.js';
import { KeepRules } from '../../../runtime/mesh/sparse-replication.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';
import { Mosquitto } from '../../support/mosquitto.js';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';

const PREFIX = 'fleet';
const logger = pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' });

interface Received {
  topic: string;
  retain: boolean;
  payload: Record<string, unknown> & { origin: string; seq: number; hlc: { l: number; c: number } };
}

/** from..to */
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('uplink to an external MQTT broker', () => {
  let dir: string;
  let broker: Mosquitto;
  let node: TestMeshNode;
  let subscriber: MqttClient;
  let received: Received[];
  let uplinks: Uplink[];
  let stateFile: string;

  const seqsOf = (origin: string): Set<number> => new Set(received.filter((m) => m.payload.origin === origin).map((m) => m.payload.seq));
  const covers = (origin: string, seqs: number[]): boolean => {
    const got = seqsOf(origin);
    return seqs.every((s) => got.has(s));
  };

  function makeUplink(options: Partial<UplinkOptions> = {}): Uplink {
    const uplink = new Uplink({
      url: broker.url,
      clientId: `apiary-uplink-${node.node.nodeId}`,
      store: node.mesh.store,
      stateFile,
      types: ['reading', 'decision'],
      ownNodeId: node.node.nodeId,
      topicPrefix: PREFIX,
      counters: node.counters,
      logger,
      pollMs: 100,
      reconnectMs: 200,
      saveMs: 100,
      ...options,
    });
    uplinks.push(uplink);
    return uplink;
  }

  /** Appends readings from..from+count-1 to the node's own feed, waking `uplink` after each (as the node does). */
  async function appendReadings(from: number, count: number, uplink?: Uplink): Promise<void> {
    for (let i = from; i < from + count; i++) {
      await node.mesh.append('reading', { channel: 'temperature', value: 30 + i / 100, unit: '°C', t: Date.now() });
      uplink?.notify();
    }
  }

  /** What afterEach undoes, newest first: beforeEach may fail midway (no mosquitto) and must not leave the rest running. */
  let cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    cleanups = [];
    uplinks = [];
    received = [];
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-uplink-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    stateFile = path.join(dir, 'uplink', 'cursor.json');
    broker = await Mosquitto.start();
    cleanups.push(() => broker.dispose());
    const nodeDir = path.join(dir, 'node');
    node = await startMeshNode({ name: 'hive-uplink', dir: nodeDir, trustedOwners: [await ownerKeyOf(nodeDir)] });
    cleanups.push(() => node.stop());
    subscriber = connect(broker.url, { clientId: 'apiary-uplink-test-consumer', clean: false, reconnectPeriod: 100, protocolVersion: 4 });
    cleanups.push(() => subscriber.endAsync(true));
    subscriber.on('message', (topic, payload, packet) => {
      received.push({ topic, retain: packet.retain, payload: JSON.parse(payload.toString('utf8')) as Received['payload'] });
    });
    subscriber.on('error', () => undefined);
    await new Promise<void>((resolve) => subscriber.once('connect', () => resolve()));
    await subscriber.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
    cleanups.push(async () => { for (const uplink of uplinks) await uplink.stop(); });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('bridges readings with QoS 1 and loses none while the broker is down', async () => {
    const origin = node.node.nodeId;
    // The uplink reaches the broker through a proxy, so the test can make the consumer resubscribe before the uplink returns.
    const gate = new TcpProxy(broker.port);
    await gate.start();
    try {
      const uplink = makeUplink({ url: gate.url });
      await uplink.start();

      // Phase 1: all 20 arrive, on the node's topic scheme, each naming its origin and seq.
      await appendReadings(1, 20, uplink);
      await waitFor(() => covers(origin, range(1, 20)) && uplink.status().cursor[origin] === 20, 15_000,
        () => JSON.stringify({ status: uplink.status(), got: [...seqsOf(origin)] }));
      const first = received.find((m) => m.payload.seq === 1);
      expect(first?.topic).toBe(`${PREFIX}/${origin}/readings/temperature`);
      expect(first?.payload).toMatchObject({ origin, seq: 1, channel: 'temperature', unit: '°C', value: 30.01 });
      expect(first?.payload.hlc).toEqual({ l: expect.any(Number) as number, c: expect.any(Number) as number });
      expect(uplink.status()).toMatchObject({ connected: true, lagEntries: 0, published: 20 });

      // Phase 2: the broker goes away; 50 more readings wait in the feed store, not in memory.
      await broker.stop();
      await waitFor(() => !uplink.status().connected, 10_000, () => JSON.stringify(uplink.status()));
      await appendReadings(21, 50, uplink);
      await new Promise((resolve) => setTimeout(resolve, 500)); // a few pump polls and reconnect attempts
      expect(uplink.status()).toMatchObject({ connected: false, lagEntries: 50, published: 20, cursor: { [origin]: 20 } });
      expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ v: 1, cursor: { [origin]: 20 } });

      // The broker returns on the same port (empty: no persistence); the consumer is back and subscribed first.
      gate.cut();
      await broker.start();
      await waitFor(() => subscriber.connected, 10_000, () => 'the consumer did not reconnect');
      await subscriber.subscribeAsync(`${PREFIX}/#`, { qos: 1 });
      gate.heal();

      await waitFor(() => covers(origin, range(1, 70)) && uplink.status().cursor[origin] === 70, 20_000,
        () => JSON.stringify({ status: uplink.status(), counters: node.counters.snapshot(), missing: range(1, 70).filter((s) => !seqsOf(origin).has(s)) }));
      const seqs = received.map((m) => m.payload.seq);
      expect(received.every((m) => m.payload.origin === origin)).toBe(true);
      expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual(range(1, 70)); // no gap, nothing extra
      const duplicates = seqs.length - new Set(seqs).size;
      console.info(`uplink outage: ${seqs.length} messages for 70 entries, ${duplicates} duplicate(s)`);
      expect(uplink.status()).toMatchObject({ connected: true, lagEntries: 0 });
      expect(uplink.status().published).toBeGreaterThanOrEqual(70);

      await uplink.stop();
      expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ v: 1, cursor: { [origin]: 70 } });
    } finally {
      await gate.stop();
    }
  });

  it('loses nothing when the link drops in the middle of a burst, with messages in flight', async () => {
    const origin = node.node.nodeId;
    const gate = new TcpProxy(broker.port);
    await gate.start();
    try {
      await appendReadings(1, 300); // a backlog: the uplink sends it as one burst
      // Cut the link from the consumer's side the moment entry 40 arrives: the uplink is then mid-burst, a window in flight.
      let cut = false;
      subscriber.on('message', (_topic, payload) => {
        if (cut || (JSON.parse(payload.toString('utf8')) as { seq: number }).seq !== 40) return;
        cut = true;
        gate.cut(); // connections dropped, like a Wi-Fi link lost
      });
      const uplink = makeUplink({ url: gate.url, maxInFlight: 8 });
      await uplink.start();
      await waitFor(() => covers(origin, range(1, 40)) && !uplink.status().connected, 10_000, () => JSON.stringify(uplink.status()));
      expect(uplink.status().cursor[origin]).toBeLessThan(300);
      expect(uplink.status().lagEntries).toBeGreaterThan(0);
      gate.heal();
      await waitFor(() => covers(origin, range(1, 300)) && uplink.status().cursor[origin] === 300, 30_000,
        () => JSON.stringify({ status: uplink.status(), missing: range(1, 300).filter((s) => !seqsOf(origin).has(s)).length }));
      const seqs = received.map((m) => m.payload.seq);
      expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual(range(1, 300));
      console.info(`uplink cut mid-burst: ${seqs.length} messages for 300 entries, ${seqs.length - new Set(seqs).size} duplicate(s)`);
    } finally {
      await gate.stop();
    }
  });

  it('resumes from the persisted cursor after the uplink itself restarts, without resending what was confirmed', async () => {
    const origin = node.node.nodeId;
    const before = makeUplink();
    await before.start();
    await appendReadings(1, 10, before);
    await waitFor(() => covers(origin, range(1, 10)) && before.status().cursor[origin] === 10, 15_000, () => JSON.stringify(before.status()));
    await before.stop();
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ v: 1, cursor: { [origin]: 10 } });
    const seenBefore = received.length;

    // Written while no uplink runs: found on disk by the next one.
    for (let i = 11; i <= 15; i++) await node.mesh.append('reading', { channel: 'humidity', value: i, unit: '%', t: Date.now() });
    const after = makeUplink();
    await after.start();
    expect(after.status().cursor).toEqual({ [origin]: 10 });
    await waitFor(() => covers(origin, range(1, 15)) && after.status().cursor[origin] === 15, 15_000, () => JSON.stringify(after.status()));
    expect(received.slice(seenBefore).map((m) => m.payload.seq).sort((a, b) => a - b)).toEqual(range(11, 15));
    expect(after.status().published).toBe(5);
  });

  it('bridges only the chosen types, each to its topic; the others only move the cursor', async () => {
    const origin = node.node.nodeId;
    const uplink = makeUplink({ types: ['reading', 'decision', 'note'] });
    await uplink.start();
    await node.mesh.append('reading', { channel: 'humidity', value: 61, unit: '%', t: 1 });
    await node.mesh.append('model', { model: 'thermal', label: 'normal', probabilities: { normal: 1 }, t: 2 });
    await node.mesh.append('decision', { rule: 'swarm-risk', state: 'active', active: true, t: 3 });
    await node.mesh.append('note', ['not', 'an', 'object']);
    await node.mesh.append('reading', { value: 1, unit: '%', t: 5 }); // no channel: still bridged, under feed/
    await node.mesh.append('model', { model: 'thermal', label: 'warm', probabilities: { warm: 1 }, t: 6 });
    uplink.notify();
    await waitFor(() => uplink.status().cursor[origin] === 6, 15_000, () => JSON.stringify(uplink.status()));
    await waitFor(() => received.length >= 4, 5_000, () => JSON.stringify(received));
    const bySeq = new Map(received.map((m) => [m.payload.seq, m]));
    expect([...bySeq.keys()].sort((a, b) => a - b)).toEqual([1, 3, 4, 5]);
    expect(bySeq.get(1)?.topic).toBe(`${PREFIX}/${origin}/readings/humidity`);
    expect(bySeq.get(3)?.topic).toBe(`${PREFIX}/${origin}/decisions/swarm-risk`);
    expect(bySeq.get(3)?.payload).toMatchObject({ rule: 'swarm-risk', active: true, origin, seq: 3 });
    expect(bySeq.get(4)?.topic).toBe(`${PREFIX}/${origin}/feed/note`);
    expect(bySeq.get(4)?.payload).toMatchObject({ body: ['not', 'an', 'object'], origin, seq: 4 });
    expect(bySeq.get(5)?.topic).toBe(`${PREFIX}/${origin}/feed/reading`);
    expect(node.counters.get('uplink.topic_fallback')).toBe(1);
    expect(uplink.status()).toMatchObject({ lagEntries: 0, published: 4 });

    // A decision is retained, as on the node's own broker: a consumer that comes later sees the current one.
    const late = connect(broker.url, { clientId: 'apiary-uplink-test-late', protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const retained = new Promise<{ topic: string; retain: boolean }>((resolve) => late.on('message', (topic, _payload, packet) => resolve({ topic, retain: packet.retain })));
      await new Promise<void>((resolve) => late.once('connect', () => resolve()));
      await late.subscribeAsync(`${PREFIX}/${origin}/decisions/#`, { qos: 1 });
      expect(await retained).toEqual({ topic: `${PREFIX}/${origin}/decisions/swarm-risk`, retain: true });
    } finally {
      await late.endAsync(true);
    }
  });

  it('counts a malformed cursor file and starts over (at least once)', async () => {
    const origin = node.node.nodeId;
    await appendReadings(1, 3);
    await mkdir(path.dirname(stateFile), { recursive: true });
    await writeFile(stateFile, '{"v":1,"cursor":{"abc":');
    const uplink = makeUplink();
    await uplink.start();
    expect(node.counters.get('uplink.cursor_malformed')).toBe(1);
    expect(uplink.status().cursor).toEqual({ [origin]: 0 });
    await waitFor(() => covers(origin, range(1, 3)) && uplink.status().cursor[origin] === 3, 15_000, () => JSON.stringify(uplink.status()));
    await uplink.stop();
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ v: 1, cursor: { [origin]: 3 } });
  });

  it('skips to the first entry held when retention dropped entries before they were sent, and counts them', async () => {
    const counters = new Counters();
    const store = new FeedStore({ dir: path.join(dir, 'small-feeds'), counters, segmentBytes: 4096, maxBytesPerOrigin: 8192 });
    await store.open();
    try {
      const { identity } = await loadOrCreateIdentity(path.join(dir, 'far-node'));
      let prev: FeedEntry | undefined;
      for (let seq = 1; seq <= 200; seq++) {
        const entry = signEntry(identity, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: 1_000 + seq, c: 0 }, type: 'reading', body: { channel: 'weight', value: seq, pad: 'x'.repeat(100) } });
        expect(await store.apply(entry)).toBe('applied');
        prev = entry;
      }
      const firstHeld = store.stats()[0]?.firstSeq ?? 0;
      expect(firstHeld).toBeGreaterThan(1);
      const uplink = makeUplink({ store, counters, ownNodeId: identity.nodeId, clientId: 'apiary-uplink-far' });
      await uplink.start();
      await waitFor(() => uplink.status().cursor[identity.nodeId] === 200, 15_000, () => JSON.stringify(uplink.status()));
      await waitFor(() => covers(identity.nodeId, range(firstHeld, 200)), 5_000, () => `${seqsOf(identity.nodeId).size} received`);
      expect([...seqsOf(identity.nodeId)].sort((a, b) => a - b)).toEqual(range(firstHeld, 200));
      expect(counters.get('uplink.skipped_retention')).toBe(firstHeld - 1);
      await uplink.stop();
    } finally {
      await store.close();
    }
  });

  it('sends what a sparse feed kept, passing over the entries it did not keep (not counted as lost to retention)', async () => {
    const counters = new Counters();
    const { identity } = await loadOrCreateIdentity(path.join(dir, 'sparse-node'));
    const store = new FeedStore({
      dir: path.join(dir, 'sparse-feeds'), counters, segmentBytes: 4096, maxBytesPerOrigin: 1024 * 1024,
      replication: new KeepRules([{ types: ['decision'] }], node.node.nodeId, () => undefined),
      sparse: { dir: path.join(dir, 'sparse-kept'), relay: new RelayCache({ maxBytes: 64 * 1024, counters }) },
    });
    await store.open();
    try {
      let prev: FeedEntry | undefined;
      for (let seq = 1; seq <= 30; seq++) {
        const type = seq % 10 === 5 ? 'decision' : 'reading';
        const entry = signEntry(identity, { seq, prev: prev ? entryHash(prev) : null, hlc: { l: 1_000 + seq, c: 0 }, type, body: { channel: 'weight', value: seq } });
        expect(await store.apply(entry)).toBe('applied');
        prev = entry;
      }
      const uplink = makeUplink({ store, counters, ownNodeId: identity.nodeId, clientId: 'apiary-uplink-sparse' });
      await uplink.start();
      await waitFor(() => uplink.status().cursor[identity.nodeId] === 30, 15_000, () => JSON.stringify(uplink.status()));
      await waitFor(() => covers(identity.nodeId, [5, 15, 25]), 5_000, () => `${seqsOf(identity.nodeId).size} received`);
      expect([...seqsOf(identity.nodeId)].sort((a, b) => a - b)).toEqual([5, 15, 25]);
      expect(counters.get('uplink.skipped_not_kept')).toBe(27);
      expect(counters.get('uplink.skipped_retention')).toBe(0);
      await uplink.stop();
    } finally {
      await store.close();
    }
  });
});

