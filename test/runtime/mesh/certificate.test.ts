import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { loadOrCreateKeyFile, type NodeIdentity } from '../../../runtime/identity/identity.js';
import { certificateNodeId, decodeCertificate, issueCertificate, trustOf, type NodeCertificate, type TrustPolicy } from '../../../runtime/mesh/certificate.js';
import { MemberDirectory } from '../../../runtime/mesh/member-directory.js';

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
});
