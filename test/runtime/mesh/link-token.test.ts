/**
 * Issue 10, finding 8: a link token is single-use whatever its spelling, is
 * dated within the skew, and stays used across a restart. Plus property tests
 * of the token decoder: random and mutated passwords are refused and counted,
 * never thrown out of the broker's CONNECT check.
 */
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { serverBinding } from '../../../runtime/mesh/link-binding.js';
import { makeLinkToken } from '../../../runtime/mesh/link-token.js';
import { meshTestBed, ownerKeyOf, startMeshNode, type TestMeshNode } from '../../support/mesh-node.js';

/** A genuine token of `from` for `to`'s plain listener, as the JSON object inside the password. */
function tokenFor(from: TestMeshNode, to: TestMeshNode, t = Date.now(), bind = `tcp:127.0.0.1:${to.broker.port}`): Record<string, unknown> {
  const token = makeLinkToken(from.identity, to.node.nodeId, t, bind) as unknown;
  const password = (token as { password?: Buffer }).password ?? (token as Buffer);
  return JSON.parse(password.toString('utf8')) as Record<string, unknown>;
}

/** The same base64url bytes spelled differently: the last character's unused low bits set. */
function respell(sig: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(sig.at(-1) as string);
  return sig.slice(0, -1) + (alphabet[last ^ 0b0001] as string);
}

describe('link tokens', () => {
  const { dir, nodes, status } = meshTestBed('token');
  const clients: MqttClient[] = [];
  afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.endAsync(true))); });

  async function connect(from: TestMeshNode, to: TestMeshNode, token: unknown): Promise<MqttClient> {
    const client = await connectAsync(`mqtt://127.0.0.1:${to.broker.port}`, {
      protocolVersion: 4, clientId: `apiary-${from.node.nodeId}`, username: from.node.nodeId, password: Buffer.from(JSON.stringify(token)), reconnectPeriod: 0, connectTimeout: 5_000,
    });
    clients.push(client);
    return client;
  }

  async function pair(): Promise<{ a: TestMeshNode; b: TestMeshNode; owners: string[] }> {
    const dirs = ['a', 'b'].map((n) => path.join(dir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const a = await startMeshNode({ name: 'a', dir: dirs[0] as string, trustedOwners: owners });
    const b = await startMeshNode({ name: 'b', dir: dirs[1] as string, trustedOwners: owners });
    nodes.push(a, b);
    return { a, b, owners };
  }

  it('refuses a used token re-spelled, one dated ahead of the skew, and a used one after a restart, and counts each', async () => {
    const { a, b, owners } = await pair();
    const token = tokenFor(a, b);
    await connect(a, b, token);
    // The same signature bytes, another spelling.
    await expect(connect(a, b, { ...token, sig: respell(token.sig as string) })).rejects.toThrow(/Bad username or password/i);
    await expect(connect(a, b, token)).rejects.toThrow(/Bad username or password/i);
    // Signed for an hour ahead: a token that would stay valid long after capture.
    await expect(connect(a, b, tokenFor(a, b, Date.now() + 3_600_000))).rejects.toThrow(/Bad username or password/i);
    const refusals = Object.entries(b.counters.snapshot()).filter(([k]) => k.startsWith('mesh.rejected.link_')).reduce((n, [, v]) => n + v, 0);
    expect(refusals).toBe(3);
    expect(b.counters.get('mesh.rejected.link_expired')).toBe(1);

    // A token accepted just before a restart is still used after it.
    const fresh = tokenFor(a, b);
    await connect(a, b, fresh);
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    const port = b.broker.port;
    await nodes.splice(nodes.indexOf(b), 1)[0]?.stop();
    const restarted = await startMeshNode({ name: 'b', dir: b.dir, trustedOwners: owners, port });
    nodes.push(restarted);
    await expect(connect(a, restarted, fresh)).rejects.toThrow(/Bad username or password/i);
    expect(restarted.counters.get('mesh.rejected.link_replayed')).toBe(1);
    // And honest links still work.
    await connect(a, restarted, tokenFor(a, restarted));
    expect(status()).toContain('"name":"b"');
  });

  it('random and mutated passwords are refused and counted, never thrown', async () => {
    const { a, b } = await pair();
    // A real socket to stand for the connection: the genuine token is bound to it (as seen from its local end).
    const socket = net.connect(b.broker.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const genuine = tokenFor(a, b, Date.now(), serverBinding(socket));
    const request = (password: Buffer) => ({ clientId: `apiary-${a.node.nodeId}`, username: a.node.nodeId, password, remoteAddress: '127.0.0.1', socket });
    const refusedCount = () => Object.entries(b.counters.snapshot()).filter(([k]) => k.startsWith('mesh.rejected.link_')).reduce((n, [, v]) => n + v, 0);
    let runs = 0;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
      runs++;
      expect(b.access.authenticate(request(Buffer.from(bytes)))).toHaveProperty('refused');
    }), { numRuns: 200 });
    const field = fc.constantFrom('v', 'cert', 't', 'nonce', 'bind', 'sig', 'extra');
    const value = fc.oneof(fc.string({ maxLength: 100 }), fc.integer(), fc.double(), fc.constant(null), fc.constant(undefined), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
    fc.assert(fc.property(field, value, (key, replacement) => {
      const mutated: Record<string, unknown> = { ...genuine, [key]: replacement };
      if (replacement === undefined) delete mutated[key];
      fc.pre(JSON.stringify(mutated) !== JSON.stringify(genuine));
      runs++;
      expect(b.access.authenticate(request(Buffer.from(JSON.stringify(mutated))))).toHaveProperty('refused');
    }), { numRuns: 300 });
    // Flipping any one character of the genuine token never yields an accepted token.
    const text = JSON.stringify(genuine);
    fc.assert(fc.property(fc.nat({ max: text.length - 1 }), fc.integer({ min: 1, max: 126 }), (at, code) => {
      const mutated = text.slice(0, at) + String.fromCharCode(code) + text.slice(at + 1);
      fc.pre(mutated !== text);
      runs++;
      expect(b.access.authenticate(request(Buffer.from(mutated)))).toHaveProperty('refused');
    }), { numRuns: 300 });
    expect(refusedCount()).toBe(runs);
    // The control: the genuine token itself is accepted, once.
    expect(b.access.authenticate(request(Buffer.from(text)))).toEqual({ kind: 'peer', id: a.node.nodeId });
    socket.destroy();
  });
});
