/**
 * The decision audit against the real shipped hive-sound model through
 * onnxruntime-node: an honest record verifies, and each kind of lie or
 * damage gets its own verdict.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioFeatures, AUDIO_SAMPLE_RATE } from '../../../../models/features/audio-bands.js';
import { OnnxRuntimeNodeBackend } from '../../../../models/inference/onnxruntime-node-backend.js';
import { NO_TRUST } from '../../../../models/registry/manifest-signature.js';
import { loadVerifiedModel, type VerifiedModel } from '../../../../models/registry/model-runner.js';
import { auditDecision, auditFeeds, DECISION_ENTRY_TYPE, type ModelEvidence, type ModelLookup } from '../../../../runtime/extensions/decision-audit/decision-audit.js';
import type { FeedEntry } from '../../../../runtime/mesh/feed-entry.js';
import { HIVE_SOUND_DIR, readClip } from '../../../models/helpers.js';
import { meshTestBed, startLinkedPair, waitFor } from '../../../support/mesh-node.js';

describe('decision audit', () => {
  let model: VerifiedModel;
  let lookup: ModelLookup;
  let honest: { rule: string; state: string; input: string; value: number; t: number; evidence: ModelEvidence };

  beforeAll(async () => {
    model = await loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend: new OnnxRuntimeNodeBackend(), trust: NO_TRUST });
    lookup = (sha256, version) => Promise.resolve(sha256 === model.sha256 && version === model.manifest.version ? model : undefined);
    const features = audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE);
    const prediction = await model.predict(features);
    const evidence: ModelEvidence = {
      model: 'hive-sound', version: model.manifest.version, sha256: model.sha256, inputHash: prediction.inputHash,
      features, probabilities: prediction.probabilities, t: 1_000,
    };
    honest = { rule: 'swarming', state: 'raised', input: 'model.hive-sound.swarm', value: prediction.probabilities.swarm ?? Number.NaN, t: 1_000, evidence };
  });

  afterAll(async () => {
    await model.close();
  });

  const audit = (body: unknown) => auditDecision({ origin: 'abcdefghijkl', seq: 7, body }, lookup);

  it('verifies an honest record: same input hash, same output, and the rule saw that output', async () => {
    expect(honest.value).toBeGreaterThan(0.8);
    const result = await audit(honest);
    expect(result).toMatchObject({ origin: 'abcdefghijkl', seq: 7, rule: 'swarming', model: 'hive-sound', verdict: 'verified' });
  });

  it('catches features that do not hash to the recorded input hash', async () => {
    const features = { ...honest.evidence.features, rms_dbfs: (honest.evidence.features.rms_dbfs ?? 0) + 3 };
    expect((await audit({ ...honest, evidence: { ...honest.evidence, features } })).verdict).toBe('input-hash-mismatch');
  });

  it('catches an output the model does not give for that input', async () => {
    const probabilities = { normal: 0.05, 'pre-swarm': 0.05, swarm: 0.9 };
    const result = await audit({ ...honest, value: 0.9, evidence: { ...honest.evidence, probabilities } });
    expect(result.verdict).toBe('output-mismatch');
    expect(result.detail).toMatch(/the model gives normal = /);
  });

  it('catches a rule value that is not the recorded output', async () => {
    expect((await audit({ ...honest, value: honest.value - 0.1 })).verdict).toBe('value-mismatch');
  });

  it('says when it cannot audit: unknown model, no inference behind the decision', async () => {
    expect((await audit({ ...honest, evidence: { ...honest.evidence, sha256: 'f'.repeat(64) } })).verdict).toBe('model-unavailable');
    expect((await audit({ rule: 'hot', state: 'raised', input: 'reading.temperature', value: 39, t: 1 })).verdict).toBe('no-inference');
  });

  it('rejects malformed or inconsistent records without throwing', async () => {
    for (const body of [null, 'text', { rule: 'x' }, { ...honest, evidence: { ...honest.evidence, sha256: 'nothex' } }, { ...honest, evidence: undefined }, { ...honest, input: 'model.hive-thermal.strong_colony' }]) {
      expect((await audit(body)).verdict).toBe('malformed');
    }
    const missingFeature: Record<string, number> = { ...honest.evidence.features };
    delete missingFeature.band_0_100;
    const result = await audit({ ...honest, evidence: { ...honest.evidence, features: missingFeature } });
    expect(result).toMatchObject({ verdict: 'malformed' });
    expect(result.detail).toMatch(/band_0_100/);
  });
});

describe('a neighbour audits the decisions in the feeds it holds', () => {
  const { dir: testDir, nodes, status } = meshTestBed('audit');

  it('verifies an honest decision from another node and catches a signed lie, public or sealed to it', async () => {
    const { a, b } = await startLinkedPair(testDir(), nodes);
    const model = await loadVerifiedModel({ dir: HIVE_SOUND_DIR, backend: new OnnxRuntimeNodeBackend(), trust: NO_TRUST });
    try {
      const features = audioFeatures(readClip('Swarm.dat'), AUDIO_SAMPLE_RATE);
      const { inputHash, probabilities } = await model.predict(features);
      const evidence = { model: 'hive-sound', version: model.manifest.version, sha256: model.sha256, inputHash, features, probabilities, t: 5 };
      const decision = { rule: 'swarming', state: 'raised', input: 'model.hive-sound.swarm', value: probabilities.swarm, t: 5, evidence };
      await a.mesh.append(DECISION_ENTRY_TYPE, decision);
      // A node that signs a claim its model does not support: the signature is valid, the claim is not.
      await a.mesh.append(DECISION_ENTRY_TYPE, { ...decision, value: 0.99, evidence: { ...evidence, probabilities: { normal: 0, 'pre-swarm': 0.01, swarm: 0.99 } } });
      await a.mesh.appendPrivate(DECISION_ENTRY_TYPE, decision, [b.node.nodeId]);
      await a.mesh.append('reading', { channel: 'temperature', value: 35 });
      await waitFor(() => b.mesh.store.head(a.node.nodeId).seq === 4, 15_000, status);

      const lookup = (sha256: string, version: string) => Promise.resolve(sha256 === model.sha256 && version === model.manifest.version ? model : undefined);
      const feed = { have: () => b.mesh.store.have(), read: (origin: string, from: number) => b.mesh.store.read(origin, from), readEntry: (e: FeedEntry) => b.mesh.readEntry(e) };
      const results = await auditFeeds(feed, lookup, { origin: a.node.nodeId, limit: 20, scan: 100 });
      expect(results.map((r) => [r.seq, r.verdict])).toEqual([[1, 'verified'], [2, 'output-mismatch'], [3, 'verified']]);
      expect(results.every((r) => r.origin === a.node.nodeId)).toBe(true);
    } finally {
      await model.close();
    }
  });
});
