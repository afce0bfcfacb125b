/**
 * The record of which peers reconcile by ranges, kept across restarts
 * (runtime/mesh/reconciling-peers.ts): real files; a restart is a new
 * instance on the same file.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { MAX_RECONCILING_PEERS, ReconcilingPeers } from '../../../runtime/mesh/reconciling-peers.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
/** A distinct node id (12 base32 characters) per number. */
const id = (i: number) => `peer${[...i.toString(32).padStart(8, '0')].map((c) => ALPHABET[parseInt(c, 32)]).join('')}`;

describe('the peers that reconcile, across restarts', () => {
  let dir = '';
  let file = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-reconciling-'));
    file = path.join(dir, 'reconciling-peers.json');
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('remembers a peer found reconciling, and forgets one put back to an older version', async () => {
    const counters = new Counters();
    const first = new ReconcilingPeers(file, counters);
    expect(await first.load()).toEqual([]);
    first.set('abcdefghijkl', true);
    first.set('mnopqrstuvwx', true);
    first.set('abcdefghijkl', true); // already known: nothing written again
    await first.flush();
    expect(await new ReconcilingPeers(file, counters).load()).toEqual(['abcdefghijkl', 'mnopqrstuvwx']);
    first.set('abcdefghijkl', false);
    await first.flush();
    expect(await new ReconcilingPeers(file, counters).load()).toEqual(['mnopqrstuvwx']);
    expect(counters.get('mesh.reconciling_peers.invalid')).toBe(0);
  });

  it(`keeps at most ${MAX_RECONCILING_PEERS}, the newest`, async () => {
    const peers = new ReconcilingPeers(file, new Counters());
    await peers.load();
    const ids = Array.from({ length: MAX_RECONCILING_PEERS + 5 }, (_, i) => id(i));
    expect(new Set(ids).size).toBe(ids.length);
    for (const peer of ids) peers.set(peer, true);
    await peers.flush();
    const loaded = await new ReconcilingPeers(file, new Counters()).load();
    expect(loaded).toHaveLength(MAX_RECONCILING_PEERS);
    expect(loaded[0]).toBe(ids[5]);
    expect(loaded.at(-1)).toBe(ids.at(-1));
  });

  it('starts with none from a file it cannot use, and counts it', async () => {
    for (const text of ['{not json', '{"v":2,"peers":[]}', '{"v":1,"peers":["../../etc"]}', '{"v":1,"peers":"abcdefghijkl"}', '']) {
      await writeFile(file, text);
      const counters = new Counters();
      expect(await new ReconcilingPeers(file, counters).load(), text).toEqual([]);
      expect(counters.get('mesh.reconciling_peers.invalid'), text).toBe(1);
    }
    // And writes a good one over it at the next peer.
    const peers = new ReconcilingPeers(file, new Counters());
    await peers.load();
    peers.set('abcdefghijkl', true);
    await peers.flush();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ v: 1, peers: ['abcdefghijkl'] });
  });
});
