/**
 * Issue 10, finding 2: with mDNS discovery on, a device without any node key
 * announces a trusted node's id at its own address. Whether it is a keyless
 * MQTT broker (taking the token), a TCP relay or a TLS-terminating relay (passing it on to the real
 * node), the token it gets is useless anywhere else, the dialling node never
 * counts the link as up, and it replaces it by a link to the real node.
 * Real bonjour-service on 127.0.0.1 and a private UDP port, as in mesh-discovery.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Bonjour } from 'bonjour-service';
import { connectAsync } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../runtime/cli/demo/link-proxy.js';
import { EmbeddedBroker } from '../../../runtime/broker/embedded-broker.js';
import { Counters } from '../../../runtime/counters.js';
import { MDNS_SERVICE_TYPE } from '../../../runtime/mesh/mdns-discovery.js';
import { freeUdpPort, meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../support/mesh-node.js';

const fixture = (name: string) => path.join(fileURLToPath(new URL('../../fixtures/tls/', import.meta.url)), name);

function linkTo(node: TestMeshNode, peerId: string): { link: string; url?: string } | undefined {
  return (node.mesh.status().peers as { nodeId: string; link: string; url?: string }[]).find((p) => p.nodeId === peerId);
}

describe('a keyless device announcing a trusted node', () => {
  const { dir, nodes, status } = meshTestBed('relay');
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => { for (const step of cleanup.splice(0).reverse()) await step(); });

  function announce(mdnsPort: number, as: { nodeId: string; owner: string }, port: number, tls = false): void {
    const forger = new Bonjour({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0' } as unknown as ConstructorParameters<typeof Bonjour>[0]);
    forger.publish({ name: `apiary-${as.nodeId}-impostor`, type: MDNS_SERVICE_TYPE, port, txt: { v: '1', id: as.nodeId, owner: as.owner, tls: tls ? '1' : '0' }, probe: false, disableIPv6: true });
    cleanup.push(() => new Promise<void>((resolve) => forger.unpublishAll(() => forger.destroy(() => resolve()))));
  }

  it.each(['keyless broker', 'tcp relay', 'tls relay'] as const)('a %s gets no link up, its token is useless at the real node, and the link goes to the real node', async (kind) => {
    const mdnsPort = await freeUdpPort();
    const discovery = { mdns: true, interface: '127.0.0.1', port: mdnsPort };
    const dirs = ['a', 'v'].map((n) => path.join(dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const mesh = { discovery, linkProofTimeout: '1s' };
    // For the TLS case, v has a TLS listener beside its loopback plain one, and announces that.
    const vTls = kind === 'tls relay' ? { tlsListener: { cert: await readFile(fixture('broker-a-cert.pem')), key: await readFile(fixture('broker-a-key.pem')) } } : {};
    // v runs, but is not announced yet: only the impostor is.
    const v = await startMeshNode({ name: 'v', dir: dirs[1] as string, trustedOwners: owners, mesh: { linkProofTimeout: '1s' }, ...vTls });
    nodes.push(v);
    const tokens: Buffer[] = [];
    let impostorPort: number;
    if (kind === 'keyless broker') {
      const counters = new Counters();
      const impostor = new EmbeddedBroker({
        host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), counters,
        access: {
          authenticate: ({ clientId, password }) => {
            if (password) tokens.push(password);
            return { kind: 'local', id: clientId };
          },
          canPublish: () => true,
          canSubscribe: () => true,
        },
      });
      impostorPort = await impostor.start();
      cleanup.push(() => impostor.stop());
    } else if (kind === 'tls relay') {
      // Terminates TLS with a certificate of its own, and opens its own TLS session to v: two sessions, two exporter values.
      const relay = tls.createServer({ cert: await readFile(fixture('other-cert.pem')), key: await readFile(fixture('other-key.pem')) }, (inbound) => {
        const outbound = tls.connect({ host: '127.0.0.1', port: v.broker.tlsPort, rejectUnauthorized: false });
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      impostorPort = (relay.address() as { port: number }).port;
      cleanup.push(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    } else {
      const relay = new TcpProxy(v.broker.port);
      await relay.start();
      impostorPort = Number(new URL(relay.url).port);
      cleanup.push(() => relay.stop());
    }
    announce(mdnsPort, { nodeId: v.node.nodeId, owner: owners[1] as string }, impostorPort, kind === 'tls relay');
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners, mesh });
    nodes.push(a);
    await a.mesh.append('reading', { from: 'a' });
    // a dials the impostor: never up, and given up on.
    await waitFor(() => a.counters.get('mesh.discovery.unproven') > 0, 20_000, status);
    expect(linkTo(a, v.node.nodeId)?.link).not.toBe('up');
    if (kind === 'keyless broker') {
      // The token the impostor took is bound to the connection to the impostor: the real node refuses it.
      expect(tokens.length).toBeGreaterThan(0);
      await expect(connectAsync(`mqtt://127.0.0.1:${v.broker.port}`, { protocolVersion: 4, clientId: `apiary-${a.node.nodeId}`, username: a.node.nodeId, password: tokens[0], reconnectPeriod: 0 }))
        .rejects.toThrow(/Bad username or password/i);
    }
    expect(v.counters.get('mesh.rejected.link_unbound')).toBeGreaterThan(0);
    expect(v.mesh.store.head(a.node.nodeId).seq).toBe(0);

    // The real node is announced now: a links to it (and v, finding a, links back).
    await nodes.splice(nodes.indexOf(v), 1)[0]?.stop();
    const real = await startMeshNode({ name: 'v', dir: dirs[1] as string, trustedOwners: owners, mesh, ...vTls });
    nodes.push(real);
    await waitFor(() => linkTo(a, real.node.nodeId)?.link === 'up' && real.mesh.store.head(a.node.nodeId).seq === 1, 20_000, status);
    expect(linkTo(a, real.node.nodeId)?.url).toBe(kind === 'tls relay' ? `mqtts://127.0.0.1:${real.broker.tlsPort}` : `mqtt://127.0.0.1:${real.broker.port}`);
    expect(a.counters.get('mesh.rejected.link_unproven') + a.counters.get('mesh.link_errors')).toBeGreaterThan(0);
  });
});
