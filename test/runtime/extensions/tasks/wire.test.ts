/**
 * The contract-net messages as a peer sends them: what the decoder takes,
 * and what it refuses (raw audio cannot pass as a task input; a proposal's
 * signature covers every field).
 */
import { describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../../../runtime/identity/identity.js';
import { decodeDirect, encodeDirect, proposalSignedBy, signProposal, taskInputSchema } from '../../../../runtime/extensions/tasks/wire.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

describe('task messages', () => {
  it('take features but never raw audio as the input of a hive-sound task', () => {
    expect(taskInputSchema.safeParse({ features: { band_0_100: -2.1, rms_dbfs: -30 } }).success).toBe(true);
    const samples = Array.from({ length: 2048 }, (_, i) => Math.sin(i / 10));
    expect(taskInputSchema.safeParse({ samples }).success).toBe(false);
    expect(taskInputSchema.safeParse({ features: Object.fromEntries(samples.slice(0, 65).map((v, i) => [`s${i}`, v])) }).success).toBe(false);
    expect(taskInputSchema.safeParse({ features: { audio: 'UklGRiQAAABXQVZF' } }).success).toBe(false);
  });

  it('sign a proposal over every field, and decode only well-formed messages', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-task-wire-'));
    try {
      const { identity } = await loadOrCreateIdentity(dir);
      const proposal = signProposal(identity, { task: 'task-0001-abcd', requester: 'abcdefghijkl', bidder: identity.nodeId, kind: 'reading-at', price: 3, unit: 'credit', eta: 100, validUntil: 2_000_000_000_000 });
      expect(proposalSignedBy(proposal, identity.publicKey)).toBe(true);
      for (const altered of [{ price: 2 }, { eta: 99 }, { validUntil: 2_000_000_000_001 }, { requester: 'bbbbbbbbbbbb' }, { unit: 'euro' }]) {
        expect(proposalSignedBy({ ...proposal, ...altered }, identity.publicKey)).toBe(false);
      }
      expect(decodeDirect(encodeDirect({ m: 'propose', proposal }))).toEqual({ m: 'propose', proposal });
      expect(decodeDirect(Buffer.from('{"m":"refuse","task":"task-0001-abcd","reason":"tired"}'))).toBeUndefined();
      expect(decodeDirect(Buffer.from('not json'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
