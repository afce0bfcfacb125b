import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { certificateNodeId, decodeCertificate, issueCertificate, selfSign, signCertificate, trustOf, type NodeCertificate, type TrustPolicy } from '../../../runtime/mesh/certificate.js';
import { loadMeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { MemberDirectory, refusalCounter } from '../../../runtime/mesh/member-directory.js';

describe('node certificates and trust', () => {
  let dir: string;
  let owner: NodeIdentity;
  let node: NodeIdentity;
  let other: NodeIdentity;
  let cert: NodeCertificate;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-cert-'));
    [owner, node, other] = await Promise.all(['owner', 'node', 'other'].map(async (n) => (await loadOrCreateKeyFile(path.join(dir, `${n}.json`))).identity)) as [NodeIdentity, NodeIdentity, NodeIdentity];
    cert = issueCertificate(owner, node, { box: other.publicKey, name: 'hive', issuedAt: Date.now(), validForMs: 3_600_000 });
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('verifies the owner signature and refuses any changed field', () => {
    expect(decodeCertificate(JSON.parse(JSON.stringify(cert)))).toEqual(cert);
    expect(certificateNodeId(cert)).toBe(node.nodeId);
    for (const forged of [{ ...cert, name: 'evil' }, { ...cert, node: other.publicKey }, { ...cert, issuedAt: cert.issuedAt + 1 }, { ...cert, owner: other.publicKey }]) {
      expect(() => decodeCertificate(forged)).toThrow(expect.objectContaining({ code: ErrorCodes.CERTIFICATE_INVALID }) as Error);
    }
    expect(() => decodeCertificate({ ...cert, extra: 1 })).toThrow(/unknown field/);
  });

  it('trusts listed owners only, refuses revoked keys, and holds a node id to its pinned key', () => {
    const policy = (p: Partial<TrustPolicy>): TrustPolicy => ({ owners: new Set([owner.publicKey]), revoked: new Set(), ...p });
    expect(trustOf(cert, policy({}), Date.now())).toBe('trusted');
    expect(trustOf(cert, policy({ owners: new Set() }), Date.now())).toBe('unknown-owner');
    expect(trustOf(cert, policy({ revoked: new Set([node.publicKey]) }), Date.now())).toBe('revoked');
    expect(trustOf(cert, policy({ revoked: new Set([owner.publicKey]) }), Date.now())).toBe('revoked');
    expect(trustOf(cert, policy({ pinned: new Map([[node.nodeId, node.publicKey]]) }), Date.now())).toBe('trusted');
    // A pin for this node id naming another key (what a node-id collision would look like).
    expect(trustOf(cert, policy({ pinned: new Map([[node.nodeId, other.publicKey]]) }), Date.now())).toBe('pin-mismatch');
  });

  it('the member directory says why a certificate is refused', () => {
    const directory = new MemberDirectory({
      file: path.join(dir, 'members.json'), counters: new Counters(), self: issueCertificate(owner, other, { box: other.publicKey, name: 'me', issuedAt: Date.now(), validForMs: 3_600_000 }),
      policy: { owners: new Set([owner.publicKey]), revoked: new Set(), pinned: new Map([[node.nodeId, other.publicKey]]) },
    });
    expect(() => directory.learn(cert)).toThrow(/not the one mesh.neighbours pins for it/);
  });

  describe('the member directory holds each node id to its first owner', () => {
    let third: NodeIdentity;
    let me: NodeCertificate;
    beforeEach(async () => {
      third = (await loadOrCreateKeyFile(path.join(dir, 'third.json'))).identity;
      me = issueCertificate(owner, other, { box: other.publicKey, name: 'me', issuedAt: Date.now(), validForMs: 3_600_000 });
    });
    const open = (counters = new Counters()) => new MemberDirectory({
      file: path.join(dir, 'members.json'), counters, self: me, maxSkewMs: 60_000,
      policy: { owners: new Set([owner.publicKey, third.publicKey]), revoked: new Set() },
    });

    it('only the first owner re-issues; issuedAt beyond the skew, an expired certificate and our own id are refused; the pin survives a restart', async () => {
      const directory = open();
      await directory.start();
      expect(directory.learn(cert)).toBe(node.nodeId);
      // The node self-signed for a second owner too (say, it was given away): that owner cannot take it over.
      const self = selfSign(node, { box: third.publicKey, owner: third.publicKey, issuedAt: Date.now() });
      const byThird = signCertificate(third, { ...self, name: 'taken', expiresAt: Date.now() + 3_600_000 });
      expect(() => directory.learn(byThird)).toThrow(expect.objectContaining({ refusal: 'owner-changed' }) as Error);
      // The first owner re-issues: accepted, newest kept. But not dated beyond the skew.
      const reissued = issueCertificate(owner, node, { box: third.publicKey, name: 'hive 2', issuedAt: Date.now() + 1_000, validForMs: 3_600_000 });
      directory.learn(reissued);
      expect(directory.get(node.nodeId)?.name).toBe('hive 2');
      const future = issueCertificate(owner, node, { box: other.publicKey, name: 'later', issuedAt: Date.now() + 3_600_000, validForMs: 3_600_000 });
      expect(() => directory.learn(future)).toThrow(expect.objectContaining({ refusal: 'future' }) as Error);
      const expired = issueCertificate(owner, third, { box: third.publicKey, name: 'old', issuedAt: Date.now() - 7_200_000, validForMs: 3_600_000 });
      expect(() => directory.learn(expired)).toThrow(expect.objectContaining({ refusal: 'expired' }) as Error);
      // Our own id, certified again by our owner with another box key: only we issue our certificate.
      const mine = issueCertificate(owner, other, { box: node.publicKey, name: 'me?', issuedAt: Date.now(), validForMs: 3_600_000 });
      expect(() => directory.learn(mine)).toThrow(expect.objectContaining({ refusal: 'self' }) as Error);
      expect(directory.get(other.nodeId)).toEqual(me);
      await directory.stop();
      // The pin is on disk: a restarted directory still refuses the second owner.
      const again = open();
      await again.start();
      expect(again.get(node.nodeId)?.name).toBe('hive 2');
      expect(() => again.learn(byThird)).toThrow(/another owner certified this node id first/);
      await again.stop();
      // Only the config can move it: a node that stops trusting the first owner releases the pin at start.
      const moved = new MemberDirectory({ file: path.join(dir, 'members.json'), counters: new Counters(), self: me, policy: { owners: new Set([third.publicKey]), revoked: new Set() } });
      await moved.start();
      expect(moved.learn(byThird)).toBe(node.nodeId);
      expect(moved.get(node.nodeId)?.owner).toBe(third.publicKey);
    });

    it('reads a members.json of format v1: v1 certificates are dropped and counted, the node starts', async () => {
      const v1 = { v: 1, node: node.publicKey, box: other.publicKey, owner: owner.publicKey, name: 'hive', issuedAt: 1, sig: 'A'.repeat(86) };
      await writeFile(path.join(dir, 'members.json'), JSON.stringify([v1, cert]));
      const counters = new Counters();
      const directory = open(counters);
      await directory.start();
      expect(counters.get('mesh.members_v1_dropped')).toBe(1);
      expect(directory.get(node.nodeId)).toEqual(cert);
      // A v1 certificate file for this node: refused at start, with the commands that make a v2 one.
      await writeFile(path.join(dir, 'old.cert.json'), JSON.stringify(v1));
      await expect(loadMeshIdentity({ dataDir: dir, node, name: 'x', ownerKeyFile: 'unused', certificateFile: path.join(dir, 'old.cert.json'), now: () => Date.now() }))
        .rejects.toMatchObject({ code: ErrorCodes.CERTIFICATE_INVALID, hint: expect.stringContaining('apiary owner sign --from') as string });
      expect(JSON.parse(await readFile(path.join(dir, 'members.json'), 'utf8'))).toHaveLength(2);
    });

    it('random and mutated certificates are refused with CERTIFICATE_INVALID, and counted, never thrown otherwise', async () => {
      const counters = new Counters();
      const directory = open(counters);
      await directory.start();
      let runs = 0;
      const refuses = (raw: unknown) => {
        runs++;
        try {
          directory.learn(raw); // as the mesh does with every certificate it is sent, and counts the refusal the same way
        } catch (err) {
          expect(err).toMatchObject({ code: ErrorCodes.CERTIFICATE_INVALID });
          counters.increment(`mesh.rejected.certificate_${refusalCounter(err)}`);
          return;
        }
        throw new Error(`accepted ${JSON.stringify(raw)}`);
      };
      fc.assert(fc.property(fc.jsonValue(), refuses), { numRuns: 200 });
      const field = fc.constantFrom('v', 'node', 'box', 'owner', 'name', 'issuedAt', 'expiresAt', 'self', 'sig', 'extra');
      const value = fc.oneof(fc.string({ maxLength: 90 }), fc.integer(), fc.double(), fc.constant(null), fc.constant(undefined), fc.constantFrom(node.publicKey, third.publicKey, cert.sig, cert.self));
      fc.assert(fc.property(field, value, (key, replacement) => {
        const mutated: Record<string, unknown> = { ...cert, [key]: replacement };
        if (replacement === undefined) delete mutated[key];
        fc.pre(JSON.stringify(mutated) !== JSON.stringify(cert));
        refuses(mutated);
      }), { numRuns: 300 });
      // One character of a key or signature changed (a re-spelling included).
      fc.assert(fc.property(fc.constantFrom('node', 'box', 'owner', 'self', 'sig'), fc.nat(), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), (key, at, char) => {
        const text = cert[key as 'node'];
        const i = at % text.length;
        fc.pre(text[i] !== char);
        refuses({ ...cert, [key]: text.slice(0, i) + char + text.slice(i + 1) });
      }), { numRuns: 300 });
      expect(counters.get('mesh.rejected.certificate_invalid')).toBe(runs);
      expect(directory.get(node.nodeId)).toBeUndefined();
    });
  });
});
