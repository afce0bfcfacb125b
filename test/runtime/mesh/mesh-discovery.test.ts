/**
 * Finding neighbours without listing them on both sides: dial-back (a node
 * that links to us unasked is linked back) and mDNS on the LAN. The mDNS
 * tests run real bonjour-service on 127.0.0.1 and a private UDP port, so no
 * packet leaves loopback.
 */
import path from 'node:path';
import { Bonjour } from 'bonjour-service';
import { describe, expect, it } from 'vitest';
import { MDNS_SERVICE_TYPE, parseService } from '../../../runtime/mesh/mdns-discovery.js';
import { freeUdpPort, meshTestBed, ownerKeyOf, startLinkedPair, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

async function entriesOf(node: TestMeshNode, origin: string): Promise<unknown[]> {
  const got: unknown[] = [];
  for await (const e of node.mesh.store.read(origin)) got.push(JSON.parse(e.body));
  return got;
}

describe('finding neighbours', () => {
  const { dir: testDir, nodes, status } = meshTestBed('discovery');

  it('links back to a node that listed us when we did not list it, and then both get everything', async () => {
    const { a, b } = await startLinkedPair(testDir(), nodes);
    for (let i = 0; i < 3; i++) await a.mesh.append('reading', { from: 'a', i });
    for (let i = 0; i < 4; i++) await b.mesh.append('reading', { from: 'b', i });
    await waitFor(() => a.mesh.store.head(b.node.nodeId).seq === 4 && b.mesh.store.head(a.node.nodeId).seq === 3, 15_000, status);
    expect(b.counters.get('mesh.dial_backs')).toBe(1);
    expect(a.counters.get('mesh.dial_backs')).toBe(0);
    expect(await entriesOf(a, b.node.nodeId)).toEqual([0, 1, 2, 3].map((i) => ({ from: 'b', i })));
    const peerOfB = (b.mesh.status().peers as { nodeId: string; link: string; url: string }[]).find((p) => p.nodeId === a.node.nodeId);
    expect(peerOfB).toMatchObject({ link: 'up', url: `mqtt://127.0.0.1:${a.broker.port}` });
  });

  it('with dialBack off, a one-sided link is counted and not linked back', async () => {
    const dirs = ['a', 'b'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: owners, mesh: { dialBack: false } });
    nodes.push(b);
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners, mesh: { neighbours: [{ url: b.broker.url, nodeId: b.node.nodeId }] } });
    nodes.push(a);
    await a.mesh.append('reading', { from: 'a' });
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 1 && b.counters.get('mesh.one_sided_links') > 0, 15_000, status);
    expect(b.counters.get('mesh.dial_backs')).toBe(0);
    expect((b.mesh.status().peers as { nodeId: string; link: string }[]).find((p) => p.nodeId === a.node.nodeId)?.link).toBe('none');
  });

  it('finds trusted nodes by mDNS on loopback, links them, and skips untrusted and malformed announcements', async () => {
    const mdnsPort = await freeUdpPort();
    const discovery = { mdns: true, interface: '127.0.0.1', port: mdnsPort };
    const dirs = ['a', 'b', 'stranger'].map((n) => path.join(testDir(), n));
    const [ownerA, ownerB, ownerStranger] = await Promise.all(dirs.map(ownerKeyOf)) as [string, string, string];
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: [ownerA, ownerB], mesh: { discovery } });
    nodes.push(a);
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: [ownerA, ownerB], mesh: { discovery } });
    nodes.push(b);
    const stranger = await startMeshNode({ name: 'stranger', dir: dirs[2] as string, trustedOwners: [ownerStranger, ownerA, ownerB], mesh: { discovery } });
    nodes.push(stranger);
    // A forged announcement: a node id that is not one.
    const forger = new Bonjour({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0' } as unknown as ConstructorParameters<typeof Bonjour>[0]);
    try {
      forger.publish({ name: 'apiary-forged', type: MDNS_SERVICE_TYPE, port: 1883, txt: { v: '1', id: 'NOT-A-NODE-ID', owner: ownerA, tls: '0' }, probe: false, disableIPv6: true });
      await a.mesh.append('reading', { from: 'a' });
      await b.mesh.append('reading', { from: 'b' });
      await waitFor(() => a.mesh.store.head(b.node.nodeId).seq === 1 && b.mesh.store.head(a.node.nodeId).seq === 1
        && a.counters.get('mesh.discovery.untrusted') > 0 && a.counters.get('mesh.discovery.rejected') > 0, 20_000, status);
    } finally {
      await new Promise<void>((resolve) => forger.unpublishAll(() => forger.destroy(() => resolve())));
    }
    // a and b never list each other: each found the other by mDNS.
    const peersOfA = a.mesh.status().peers as { nodeId: string; link: string }[];
    expect(peersOfA.find((p) => p.nodeId === b.node.nodeId)?.link).toBe('up');
    // The stranger's owner is not trusted by a: no link from a to it, and its entries are not in a's store.
    expect(peersOfA.find((p) => p.nodeId === stranger.node.nodeId)?.link ?? 'none').toBe('none');
    await stranger.mesh.append('reading', { from: 'stranger' });
    expect(a.mesh.store.head(stranger.node.nodeId).seq).toBe(0);
  });

  it('reads only well-formed announcements', () => {
    const owner = 'A'.repeat(43);
    const good = { port: 1883, txt: { v: '1', id: 'abcdefghijkl', owner, tls: '0' }, referer: { address: '192.168.1.20' }, addresses: ['fe80::1'] };
    expect(parseService(good)).toEqual({ nodeId: 'abcdefghijkl', owner, url: 'mqtt://192.168.1.20:1883' });
    expect(parseService({ ...good, txt: { ...good.txt, tls: '1' }, referer: undefined, addresses: ['fe80::1', '10.0.0.7'] })?.url).toBe('mqtts://10.0.0.7:1883');
    for (const bad of [
      { ...good, txt: undefined },
      { ...good, txt: { ...good.txt, v: '2' } },
      { ...good, txt: { ...good.txt, id: 'abcdefghijk1' } },
      { ...good, txt: { ...good.txt, owner: 'short' } },
      { ...good, txt: { ...good.txt, tls: 'yes' } },
      { ...good, port: 0 },
      { ...good, port: 70_000 },
      { ...good, port: '1883' },
      { ...good, referer: { address: 'fe80::1' }, addresses: [] },
    ]) expect(parseService(bad)).toBeUndefined();
  });
});
