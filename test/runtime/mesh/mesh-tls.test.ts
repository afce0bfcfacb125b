/**
 * Links over TLS with a pinned broker certificate: the neighbour's own
 * self-signed certificate is the only one accepted, whatever host name it
 * names; a broker presenting any other certificate is never linked.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../runtime/config/load-config.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import type { PeerCertificate } from 'node:tls';
import { readBrokerTls, readPinnedCertificate } from '../../../runtime/mesh/create-mesh.js';
import { pinnedTlsOptions } from '../../../runtime/mesh/peer-link.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor } from '../../support/mesh-node.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/tls/', import.meta.url));
const fixture = (name: string) => path.join(FIXTURES, name);

describe('mesh links over TLS', () => {
  const { dir: testDir, nodes, status } = meshTestBed('tls');

  it('links to a broker whose certificate is pinned, and refuses one presenting another certificate', async () => {
    const dirs = ['a', 'b', 'c'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const tlsOf = async (name: string) => ({ cert: await readFile(fixture(`${name}-cert.pem`)), key: await readFile(fixture(`${name}-key.pem`)) });
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners, tls: await tlsOf('broker-a') });
    nodes.push(a);
    // An impostor broker: same protocol, another certificate.
    const impostor = await startMeshNode({ name: 'impostor', dir: dirs[2] as string, trustedOwners: owners, tls: await tlsOf('other') });
    nodes.push(impostor);
    expect(a.broker.url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const pinned = fixture('broker-a-cert.pem');
    const b = await startMeshNode({
      name: 'b', dir: dirs[1] as string, trustedOwners: owners,
      mesh: { neighbours: [
        { url: a.broker.url, nodeId: a.node.nodeId, tlsCertificate: pinned },
        // The impostor's port, but a's identity and a's pinned certificate.
        { url: impostor.broker.url, nodeId: impostor.node.nodeId, tlsCertificate: pinned },
      ] },
    });
    nodes.push(b);
    await b.mesh.append('reading', { from: 'b' });
    // b's entry reaches a over the pinned TLS link.
    await waitFor(() => a.mesh.store.head(b.node.nodeId).seq === 1, 15_000, status);
    await waitFor(() => b.counters.get('mesh.link_errors') > 0, 15_000, status);
    const peers = b.mesh.status().peers as { nodeId: string; link: string; lastError?: string }[];
    expect(peers.find((p) => p.nodeId === a.node.nodeId)?.link).toBe('up');
    const toImpostor = peers.find((p) => p.nodeId === impostor.node.nodeId);
    expect(toImpostor?.link).not.toBe('up');
    expect(toImpostor?.lastError).toMatch(/self-signed certificate|is not the pinned one/);
    expect(impostor.broker.connectedClients).toBe(0);
  });

  it('a node with a TLS listener beside a loopback-only plain one is dialled back over TLS, pinned to the certificate its hello names', async () => {
    const dirs = ['a', 'b'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners });
    nodes.push(a);
    const b = await startMeshNode({
      name: 'b', dir: dirs[1] as string, trustedOwners: owners,
      tlsListener: { cert: await readFile(fixture('other-cert.pem')), key: await readFile(fixture('other-key.pem')) },
      mesh: { neighbours: [{ url: a.broker.url, nodeId: a.node.nodeId }] },
    });
    nodes.push(b);
    expect(b.broker.tlsPort).toBeGreaterThan(0);
    await a.mesh.append('reading', { from: 'a' });
    await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 1, 15_000, status);
    const back = (a.mesh.status().peers as { nodeId: string; link: string; url: string }[]).find((p) => p.nodeId === b.node.nodeId);
    expect(back).toMatchObject({ link: 'up', url: `mqtts://127.0.0.1:${b.broker.tlsPort}` });
    expect(a.counters.get('mesh.dial_backs')).toBe(1);
  });

  it('with broker.tls, neighbours are accepted only over TLS (plain stays for local tools), and a peer heard over TLS is never dialled back in plain', async () => {
    const dirs = ['a', 'b', 'c'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const a = await startMeshNode({
      name: 'a', dir: dirs[0] as string, trustedOwners: owners,
      broker: { tls: { port: 0, certificateFile: fixture('broker-a-cert.pem'), keyFile: fixture('broker-a-key.pem') } },
      tlsListener: { cert: await readFile(fixture('broker-a-cert.pem')), key: await readFile(fixture('broker-a-key.pem')) },
    });
    nodes.push(a);
    // b links to a's plain listener: refused. c links over TLS, pinned: accepted; c names only a plain listener for dial-back.
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: owners, mesh: { neighbours: [{ url: a.broker.url, nodeId: a.node.nodeId }] } });
    nodes.push(b);
    const c = await startMeshNode({
      name: 'c', dir: dirs[2] as string, trustedOwners: owners,
      mesh: { neighbours: [{ url: `mqtts://127.0.0.1:${a.broker.tlsPort}`, nodeId: a.node.nodeId, tlsCertificate: fixture('broker-a-cert.pem') }] },
    });
    nodes.push(c);
    await b.mesh.append('reading', { from: 'b' });
    await c.mesh.append('reading', { from: 'c' });
    await waitFor(() => a.mesh.store.head(c.node.nodeId).seq === 1 && a.counters.get('mesh.rejected.link_plain') > 0
      && a.counters.get('mesh.rejected.dial_back_downgrade') > 0, 15_000, status);
    expect(a.mesh.store.head(b.node.nodeId).seq).toBe(0);
    const peersOfA = a.mesh.status().peers as { nodeId: string; link: string }[];
    expect(peersOfA.find((p) => p.nodeId === c.node.nodeId)?.link ?? 'none').toBe('none');
    // A local tool still uses the plain listener.
    const { connectAsync } = await import('mqtt');
    const tool = await connectAsync(a.broker.url, { reconnectPeriod: 0 });
    await tool.endAsync();
  });

  it('certificate and key files that are not what they should be are config errors naming the field', async () => {
    await expect(readPinnedCertificate(fixture('broker-a-key.pem'), 'mesh.neighbours.0.tlsCertificate')).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID, message: expect.stringContaining('field "mesh.neighbours.0.tlsCertificate"') as string });
    expect(await readBrokerTls({ certificateFile: fixture('broker-a-cert.pem'), keyFile: fixture('broker-a-key.pem') })).toMatchObject({ cert: expect.stringContaining('BEGIN CERTIFICATE') as string });
    await expect(readBrokerTls({ certificateFile: fixture('broker-a-cert.pem'), keyFile: fixture('other-key.pem') })).rejects.toThrow(/not a matching PEM certificate and key/);
    await expect(readBrokerTls({ certificateFile: fixture('missing.pem'), keyFile: fixture('other-key.pem') })).rejects.toThrow(/field "broker.tls.certificateFile": cannot read/);
    const pin = await readPinnedCertificate(fixture('broker-a-cert.pem'), 'x');
    expect(pin.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    // The second barrier: a certificate that chains to the pinned one but is not it (as if the pin were a CA).
    const { checkServerIdentity } = pinnedTlsOptions(pin);
    const other = await readPinnedCertificate(fixture('other-cert.pem'), 'x');
    expect(checkServerIdentity('anything', { fingerprint256: pin.fingerprint256 } as PeerCertificate)).toBeUndefined();
    expect(checkServerIdentity('anything', { fingerprint256: other.fingerprint256 } as PeerCertificate)?.message).toContain('is not the pinned one');
  });

  it('resolves certificate paths against the config file, and wants mqtts for a pinned certificate', async () => {
    const file = path.join(testDir(), 'apiary.yaml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, 'mesh:\n  neighbours:\n    - { url: "mqtts://10.0.0.2:8883", nodeId: abcdefghijkl, tlsCertificate: certs/b.pem }\nbroker:\n  tls: { certificateFile: me.pem, keyFile: me-key.pem }\n');
    const { config } = loadConfig({ file });
    expect(config.mesh.neighbours[0]?.tlsCertificate).toBe(path.join(testDir(), 'certs', 'b.pem'));
    expect(config.broker.tls).toEqual({ port: 8883, peersOnly: true, certificateFile: path.join(testDir(), 'me.pem'), keyFile: path.join(testDir(), 'me-key.pem') });
    await writeFile(file, 'mesh:\n  neighbours:\n    - { url: "mqtt://10.0.0.2:1883", nodeId: abcdefghijkl, tlsCertificate: b.pem }\n');
    expect(() => loadConfig({ file })).toThrow(/needs an mqtts:\/\/ URL/);
  });
});
