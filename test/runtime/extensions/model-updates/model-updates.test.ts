/**
 * Model updates over a real three-node mesh (A - B - C in a line, so C gets
 * everything through B): real aedes brokers, signed feeds, real ONNX models
 * through onnxruntime-node, real files. A good release spreads and is
 * installed everywhere; a broken one (does not load; loads but gives
 * non-probabilities) is rolled back on every node, which says so in its feed.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { OnnxRuntimeNodeBackend } from '../../../../models/inference/onnxruntime-node-backend.js';
import { buildDenseClassifierOnnx } from '../../../../models/onnx/onnx-writer.js';
import { sha256Hex } from '../../../../models/registry/manifest.js';
import { signManifestJson, type ModelTrust } from '../../../../models/registry/manifest-signature.js';
import { MODEL_CHUNK_TYPE } from '../../../../models/registry/model-release.js';
import { stagingDir, swapInModel } from '../../../../models/registry/model-install.js';
import { mulberry32 } from '../../../../models/training/softmax-regression.js';
import { SOUND_MODEL } from '../../../../runtime/apps/beehive/hive-models.js';
import { TestHive as HiveInference } from '../../../support/test-hive.js';
import { modelTrustFromConfig } from '../../../../runtime/core/model-trust.js';
import { ModelReleasePolicy } from '../../../../runtime/extensions/model-updates/model-release-policy.js';
import { MODEL_UPDATE_TYPE, ModelUpdates, pendingReleasesFile, type UpdateReport } from '../../../../runtime/extensions/model-updates/model-updates.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { loadOrCreateKeyFile } from '../../../../runtime/identity/identity.js';
import { meshTestBed, ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../../support/mesh-node.js';
import { HIVE_SOUND_DIR } from '../../../models/helpers.js';

interface UpdatingNode {
  readonly mesh: TestMeshNode;
  readonly inference: HiveInference;
  readonly updates: ModelUpdates;
}

/**
 * A hive-sound release: the shipped manifest with a new version and model
 * file, signed by the owner key in `ownerFile`. `padding` grows the file
 * (ONNX metadata) so it needs several chunks; `outputs` 1 makes a model that
 * loads but gives one value for three labels.
 */
async function makeRelease(dir: string, ownerFile: string, options: { version: string; seed: number; padding?: number; outputs?: number; garbage?: boolean; edit?: (manifest: TestManifest) => void }): Promise<string> {
  const random = mulberry32(options.seed);
  const k = options.outputs ?? 3;
  const bytes = options.garbage
    ? new TextEncoder().encode('this is not an ONNX model, but its hash and signature are right')
    : buildDenseClassifierOnnx({
      weights: Array.from({ length: 8 }, () => Array.from({ length: k }, () => random() - 0.5)),
      bias: Array.from({ length: k }, () => random() - 0.5),
      modelName: SOUND_MODEL,
      modelVersion: options.version,
      metadata: options.padding ? { padding: 'x'.repeat(options.padding) } : {},
    });
  const manifest = JSON.parse(await readFile(path.join(HIVE_SOUND_DIR, 'manifest.json'), 'utf8')) as TestManifest;
  options.edit?.(manifest);
  const out = path.join(dir, `release-${options.version}-${options.seed}`);
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'model.onnx'), bytes);
  const { identity: owner } = await loadOrCreateKeyFile(ownerFile);
  const signed = signManifestJson({ ...manifest, version: options.version, sha256: sha256Hex(bytes) }, owner);
  await writeFile(path.join(out, 'manifest.json'), JSON.stringify(signed, null, 2));
  return out;
}

type TestManifest = Record<string, unknown> & { inputs: { features: { name: string; mean: number }[] }[]; outputs: { labels: string[] }[] };

/** The rules of a default config (model.hive-sound.swarm), as a node's release policy sees them. */
const DEFAULT_RULE_LABELS = ModelReleasePolicy.ruleLabels(parseConfig({}).decisions.map((r) => r.input));

function policyFor(dir: string, trust: ModelTrust): ModelReleasePolicy {
  return new ModelReleasePolicy({ file: path.join(dir, 'model-signers.json'), trust, ruleLabels: DEFAULT_RULE_LABELS });
}

interface TrustOptions { own?: string; signers?: Record<string, string>; trust?: ModelTrust }

/** A HiveInference (sound model only) and a ModelUpdates on a mesh node, as ApiaryNode wires them. */
async function startUpdater(mesh: TestMeshNode, dir: string, trustedOwners: string[], options: TrustOptions = {}): Promise<{ inference: HiveInference; updates: ModelUpdates }> {
  const trust: ModelTrust = options.trust ?? {
    owners: new Map(trustedOwners.map((key, i) => [key, `owner-${i}`])), revoked: new Set(),
    signers: new Map(Object.entries(options.signers ?? {})), ...(options.own ? { own: options.own } : {}),
  };
  const logger = pino({ level: process.env.APIARY_TEST_LOG ?? 'silent' });
  const holder: { updates?: ModelUpdates } = {};
  const inference = new HiveInference(parseConfig({ models: { thermal: { enabled: false } } }).models, new OnnxRuntimeNodeBackend(), {
    trust, logger, counters: mesh.counters, dataDir: dir, onInvalidOutput: (model, err) => holder.updates?.onInvalidOutput(model, err),
  });
  await inference.start();
  const updates = new ModelUpdates({ mesh: mesh.mesh, host: inference, trust, policy: policyFor(dir, trust), counters: mesh.counters, logger, pendingFile: pendingReleasesFile(dir) });
  holder.updates = updates;
  updates.start();
  return { inference, updates };
}

async function startUpdatingNode(name: string, dir: string, trustedOwners: string[], neighbour?: TestMeshNode, options: TrustOptions = {}): Promise<UpdatingNode> {
  const mesh = await startMeshNode({ name, dir, trustedOwners, ...(neighbour ? { mesh: { neighbours: [{ url: neighbour.broker.url, nodeId: neighbour.node.nodeId }] } } : {}) });
  const { inference, updates } = await startUpdater(mesh, dir, trustedOwners, options);
  const stopMesh = mesh.stop.bind(mesh); // the original: mesh.stop is replaced below
  return {
    mesh: Object.assign(mesh, { stop: async () => { await updates.stop(); await inference.stop(); await stopMesh(); } }),
    inference,
    updates,
  };
}

/** Stops a node's updater and models, puts `release` in place by hand (no release checks, like `apiary models install`), and starts them again. */
async function installByHandAndRestart(node: UpdatingNode, dir: string, release: string): Promise<{ inference: HiveInference; updates: ModelUpdates }> {
  await node.updates.stop();
  await node.inference.stop();
  const models = path.join(dir, 'models');
  const staged = await stagingDir(models, SOUND_MODEL);
  await cp(release, staged, { recursive: true });
  await swapInModel(models, SOUND_MODEL, staged);
  return startUpdater(node.mesh, dir, [await ownerKeyOf(dir)]);
}

async function updateEntries(reader: TestMeshNode, origin: string): Promise<UpdateReport[]> {
  const got: UpdateReport[] = [];
  for await (const e of reader.mesh.store.read(origin)) if (e.type === MODEL_UPDATE_TYPE) got.push(JSON.parse(e.body) as UpdateReport);
  return got;
}

describe('model updates over the mesh', () => {
  const { dir: testDir, nodes, status } = meshTestBed('model-updates');

  async function line(names: string[], trusted: (owners: string[]) => string[] = (o) => o): Promise<UpdatingNode[]> {
    const dirs = names.map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const started: UpdatingNode[] = [];
    for (const [i, name] of names.entries()) {
      const node = await startUpdatingNode(name, dirs[i] as string, trusted(owners).concat(i === 0 ? [owners[0] as string] : []), started[i - 1]?.mesh);
      nodes.push(node.mesh);
      started.push(node);
    }
    return started;
  }

  const version = (n: UpdatingNode) => n.inference.loaded(SOUND_MODEL)?.manifest.version;

  it('spreads a signed release in chunks to every node, which installs it; broken releases are rolled back everywhere and reported', async () => {
    const [a, b, c] = await line(['a', 'b', 'c']);
    if (!a || !b || !c) throw new Error('three nodes');
    const ownerFile = path.join(testDir(), 'a', 'owner.json');
    const all = [a, b, c];
    expect(all.map(version)).toEqual(['0.1.0', '0.1.0', '0.1.0']);

    // 1. A good release of about 100 KB: four chunks.
    const good = await makeRelease(testDir(), ownerFile, { version: '0.2.0', seed: 1, padding: 100_000 });
    const goodSha = sha256Hex(await readFile(path.join(good, 'model.onnx')));
    const published = await a.updates.publish(good);
    expect(published).toMatchObject({ status: 'installed', name: SOUND_MODEL, version: '0.2.0' });
    await waitFor(() => all.every((n) => version(n) === '0.2.0'), 20_000, status);
    let chunks = 0;
    for await (const e of c.mesh.mesh.store.read(a.mesh.node.nodeId)) if (e.type === MODEL_CHUNK_TYPE) chunks++;
    expect(chunks).toBe(4);
    for (const n of all) {
      expect(n.inference.loaded(SOUND_MODEL)?.sha256).toBe(goodSha);
      expect(n.mesh.counters.get('models.updates.installed')).toBe(1);
      const installed = path.join(n.mesh.dir, 'models', SOUND_MODEL);
      expect(sha256Hex(await readFile(path.join(installed, 'model.onnx')))).toBe(goodSha);
      expect(existsSync(`${installed}.previous`)).toBe(false); // it replaced the shipped model, which stays where it is
    }
    const features = Object.fromEntries((c.inference.loaded(SOUND_MODEL)?.manifest.inputs[0]?.features ?? []).map((f) => [f.name, f.mean]));
    expect(Object.keys((await c.inference.loaded(SOUND_MODEL)?.predict(features))?.probabilities ?? {})).toEqual(['normal', 'pre-swarm', 'swarm']);

    // 2. A release whose file does not load: rolled back to 0.2.0 on every node.
    await a.updates.publish(await makeRelease(testDir(), ownerFile, { version: '0.3.0', seed: 2, garbage: true }));
    await waitFor(() => all.every((n) => n.mesh.counters.get('models.updates.rolled_back') === 1), 20_000, status);
    // 3. A release that loads but gives one output for three labels: rolled back too.
    await a.updates.publish(await makeRelease(testDir(), ownerFile, { version: '0.4.0', seed: 3, outputs: 1 }));
    await waitFor(() => all.every((n) => n.mesh.counters.get('models.updates.rolled_back') === 2), 20_000, status);
    for (const n of all) {
      expect(version(n)).toBe('0.2.0');
      expect(n.inference.loaded(SOUND_MODEL)?.sha256).toBe(goodSha);
      const installed = path.join(n.mesh.dir, 'models', SOUND_MODEL);
      expect(JSON.parse(await readFile(path.join(installed, 'manifest.json'), 'utf8'))).toMatchObject({ version: '0.2.0' });
      expect(JSON.parse(await readFile(path.join(`${installed}.rejected`, 'manifest.json'), 'utf8'))).toMatchObject({ version: '0.4.0' });
    }
    // 4. Every node's reports reach the publisher: the owner sees who runs what, and why.
    await waitFor(async () => (await updateEntries(a.mesh, c.mesh.node.nodeId)).length === 3, 20_000, status);
    const fromC = await updateEntries(a.mesh, c.mesh.node.nodeId);
    expect(fromC.map((r) => [r.version, r.status, r.running?.version])).toEqual([['0.2.0', 'installed', '0.2.0'], ['0.3.0', 'rolled-back', '0.2.0'], ['0.4.0', 'rolled-back', '0.2.0']]);
    expect(fromC[1]?.code).toBe('APIARY_MODEL_LOAD_FAILED');
    expect(fromC[2]?.code).toBe('APIARY_MODEL_OUTPUT_INVALID');

    // 5. An older version, validly signed, is not a downgrade path.
    await a.updates.publish(await makeRelease(testDir(), ownerFile, { version: '0.1.5', seed: 4 }));
    await waitFor(() => all.every((n) => n.mesh.counters.get('models.updates.skipped') === 1), 20_000, status);
    expect(all.map(version)).toEqual(['0.2.0', '0.2.0', '0.2.0']);
  });

  it('reaches a node that was offline when the model was published: it catches up on the feed and installs it', async () => {
    const dirs = ['a', 'late'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const a = await startUpdatingNode('a', dirs[0] as string, owners);
    nodes.push(a.mesh);
    await a.updates.publish(await makeRelease(testDir(), path.join(dirs[0] as string, 'owner.json'), { version: '0.2.0', seed: 8, padding: 40_000 }));
    for (let i = 0; i < 20; i++) await a.mesh.mesh.append('reading', { i }); // the release is not the newest entry
    const late = await startUpdatingNode('late', dirs[1] as string, owners, a.mesh);
    nodes.push(late.mesh);
    await waitFor(() => version(late) === '0.2.0', 20_000, status);
    expect(late.mesh.counters.get('models.updates.installed')).toBe(1);
  });

  it('installs the same model file under a new version: the manifest (normalisation) is part of the model', async () => {
    const dir = path.join(testDir(), 'a');
    const a = await startUpdatingNode('a', dir, [await ownerKeyOf(dir)]);
    nodes.push(a.mesh);
    const release = path.join(testDir(), 'renormalised');
    await mkdir(release, { recursive: true });
    await writeFile(path.join(release, 'model.onnx'), await readFile(path.join(HIVE_SOUND_DIR, 'model.onnx')));
    const manifest = JSON.parse(await readFile(path.join(HIVE_SOUND_DIR, 'manifest.json'), 'utf8')) as { inputs: { features: { mean: number }[] }[] } & Record<string, unknown>;
    const first = manifest.inputs[0]?.features[0];
    if (first) first.mean += 1;
    const { identity: owner } = await loadOrCreateKeyFile(path.join(dir, 'owner.json'));
    await writeFile(path.join(release, 'manifest.json'), JSON.stringify(signManifestJson({ ...manifest, version: '0.1.1' }, owner)));
    expect(await a.updates.publish(release)).toMatchObject({ status: 'installed', running: { version: '0.1.1' } });
    expect(a.inference.loaded(SOUND_MODEL)?.manifest.inputs[0]?.features[0]?.mean).toBe(first?.mean);
  });

  it('keeps a received release on disk until it is handled, so a crash before the install does not lose it', async () => {
    const dirs = ['a', 'b'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const a = await startUpdatingNode('a', dirs[0] as string, owners);
    nodes.push(a.mesh);
    const b = await startUpdatingNode('b', dirs[1] as string, owners, a.mesh);
    nodes.push(b.mesh);
    // B's updater dies before it handles anything: its models "never finish loading", and it is dropped, not stopped.
    await b.updates.stop();
    const trust: ModelTrust = { owners: new Map(owners.map((k) => [k, k])), revoked: new Set() };
    const logger = pino({ level: 'silent' });
    const doomed = new ModelUpdates({ mesh: b.mesh.mesh, host: b.inference, trust, policy: policyFor(dirs[1] as string, trust), counters: b.mesh.counters, logger, pendingFile: pendingReleasesFile(dirs[1] as string) });
    doomed.start(new Promise(() => undefined));
    const published = await a.updates.publish(await makeRelease(testDir(), path.join(dirs[0] as string, 'owner.json'), { version: '0.2.0', seed: 9 }));
    const pendingFile = pendingReleasesFile(dirs[1] as string);
    await waitFor(async () => existsSync(pendingFile) && (await readFile(pendingFile, 'utf8')).includes(`"seq": ${published?.release?.seq}`), 10_000, status);
    b.mesh.mesh.removeAllListeners('entry'); // the crash: that updater is gone
    expect(version(b)).toBe('0.1.0');

    // The next start finds it on disk, reads the release from the feed store, installs it and clears the list.
    const restarted = new ModelUpdates({ mesh: b.mesh.mesh, host: b.inference, trust, policy: policyFor(dirs[1] as string, trust), counters: b.mesh.counters, logger, pendingFile });
    restarted.start();
    try {
      await waitFor(() => version(b) === '0.2.0', 10_000, status);
      await waitFor(async () => JSON.parse(await readFile(pendingFile, 'utf8')) instanceof Array && (JSON.parse(await readFile(pendingFile, 'utf8')) as unknown[]).length === 0, 10_000, status);
    } finally {
      await restarted.stop();
    }
  });

  it('rolls back an update that passed its checks at load but gives invalid outputs in service', async () => {
    const dir = path.join(testDir(), 'a');
    const a = await startUpdatingNode('a', dir, [await ownerKeyOf(dir)]);
    nodes.push(a.mesh);
    // Weights near float32's limit: fine at the self-test's inputs (0, ±2 std), overflowing to NaN on loud audio.
    const release = await makeRelease(testDir(), path.join(dir, 'owner.json'), { version: '0.2.0', seed: 6 });
    const bytes = buildDenseClassifierOnnx({ weights: Array.from({ length: 8 }, () => [1e37, 0, 0]), bias: [0, 0, 0], modelName: SOUND_MODEL, modelVersion: '0.2.0' });
    await writeFile(path.join(release, 'model.onnx'), bytes);
    const manifest = JSON.parse(await readFile(path.join(release, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    const { identity: owner } = await loadOrCreateKeyFile(path.join(dir, 'owner.json'));
    await writeFile(path.join(release, 'manifest.json'), JSON.stringify(signManifestJson({ ...manifest, sha256: sha256Hex(bytes) }, owner)));
    expect(await a.updates.publish(release)).toMatchObject({ status: 'installed' });
    expect(version(a)).toBe('0.2.0');

    const random = mulberry32(7);
    const loud = Float32Array.from({ length: 2205 }, () => random() * 2 - 1);
    await expect(a.inference.onAudio({ t: 0, sampleRate: 2205, samples: loud })).rejects.toThrow(/expected a probability|sums to/);
    await waitFor(() => a.mesh.counters.get('models.updates.rolled_back') === 1, 10_000, status);
    expect(version(a)).toBe('0.1.0'); // no previous install: back to the shipped model
    expect(a.updates.recent.at(-1)).toMatchObject({ status: 'rolled-back', version: '0.2.0', code: 'APIARY_MODEL_OUTPUT_INVALID', running: { version: '0.1.0' } });
    expect((await a.inference.onAudio({ t: 1, sampleRate: 2205, samples: loud })).output?.label).toBeDefined();

    // Installed again by hand, then a restart: this updater did not install it, and still rolls it back.
    const restarted = await installByHandAndRestart(a, dir, release);
    try {
      expect(restarted.inference.loaded(SOUND_MODEL)?.manifest.version).toBe('0.2.0'); // it passes the self-test at start
      await expect(restarted.inference.onAudio({ t: 2, sampleRate: 2205, samples: loud })).rejects.toThrow(/expected a probability|sums to/);
      await waitFor(() => a.mesh.counters.get('models.updates.rolled_back') === 2, 10_000, status);
      expect(restarted.inference.loaded(SOUND_MODEL)?.manifest.version).toBe('0.1.0');
      expect(restarted.updates.recent.at(-1)).toMatchObject({ status: 'rolled-back', version: '0.2.0', running: { version: '0.1.0' } });
      expect(restarted.updates.recent.at(-1)?.release).toBeUndefined();
    } finally {
      await restarted.updates.stop();
      await restarted.inference.stop();
    }
  });

  it('at start, runs the shipped version in place of an installed model that fails its self-test', async () => {
    const dir = path.join(testDir(), 'a');
    const ownerKey = await ownerKeyOf(dir);
    const release = await makeRelease(testDir(), path.join(dir, 'owner.json'), { version: '0.2.0', seed: 10, outputs: 1 });
    const models = path.join(dir, 'models');
    const staged = await stagingDir(models, SOUND_MODEL);
    await cp(release, staged, { recursive: true });
    await swapInModel(models, SOUND_MODEL, staged); // as if the node died after the swap, before its test
    const a = await startUpdatingNode('a', dir, [ownerKey]);
    nodes.push(a.mesh);
    expect(version(a)).toBe('0.1.0');
    expect(a.inference.refused).toEqual([expect.objectContaining({ model: SOUND_MODEL, code: 'APIARY_MODEL_OUTPUT_INVALID' })]);
  });

  it('a node that does not trust the signer refuses the release but relays it to one that does', async () => {
    // B trusts only itself and C; A and C trust A's owner.
    const dirs = ['a', 'b', 'c'].map((n) => path.join(testDir(), n));
    const owners = await Promise.all(dirs.map(ownerKeyOf));
    const [ownerA, ownerB, ownerC] = owners as [string, string, string];
    const a = await startUpdatingNode('a', dirs[0] as string, owners);
    nodes.push(a.mesh);
    const b = await startUpdatingNode('b', dirs[1] as string, [ownerA, ownerB, ownerC], a.mesh);
    nodes.push(b.mesh);
    const c = await startUpdatingNode('c', dirs[2] as string, owners, b.mesh);
    nodes.push(c.mesh);
    expect(b.mesh.counters.get('models.updates.refused')).toBe(0);
    await b.updates.stop(); // restart B's updater with a model trust that leaves A's owner out
    const narrowTrust: ModelTrust = { owners: new Map([[ownerB, 'b']]), revoked: new Set() };
    const narrow = new ModelUpdates({ mesh: b.mesh.mesh, host: b.inference, trust: narrowTrust, policy: policyFor(dirs[1] as string, narrowTrust), counters: b.mesh.counters, logger: pino({ level: 'silent' }), pendingFile: pendingReleasesFile(dirs[1] as string) });
    narrow.start();
    try {
      await a.updates.publish(await makeRelease(testDir(), path.join(dirs[0] as string, 'owner.json'), { version: '0.2.0', seed: 5 }));
      await waitFor(() => version(c) === '0.2.0' && b.mesh.counters.get('models.updates.refused') === 1, 20_000, status);
      expect(version(b)).toBe('0.1.0');
      expect(narrow.recent.at(-1)).toMatchObject({ status: 'refused', code: 'APIARY_MODEL_SIGNER_UNTRUSTED' });
      expect(existsSync(path.join(dirs[1] as string, 'models', SOUND_MODEL))).toBe(false);
    } finally {
      await narrow.stop();
    }
  });

  describe('model trust is not mesh trust (finding 10)', () => {
    /** A publisher node that trusts every owner given, and a receiver b with its own model trust, linked to it. */
    async function publisherAndReceiver(receiverTrust: (owners: { a: string; m: string; b: string }) => TrustOptions) {
      const dirs = ['a', 'b', 'm'].map((n) => path.join(testDir(), n));
      const [a, b, m] = (await Promise.all(dirs.map(ownerKeyOf))) as [string, string, string];
      const publisher = await startUpdatingNode('a', dirs[0] as string, [a, b, m]);
      nodes.push(publisher.mesh);
      const receiver = await startUpdatingNode('b', dirs[1] as string, [a, b, m], publisher.mesh, { own: b, ...receiverTrust({ a, m, b }) });
      nodes.push(receiver.mesh);
      const keyOf = (who: 'a' | 'b' | 'm') => path.join(testDir(), who, 'owner.json');
      return { publisher, receiver, keyOf, owners: { a, b, m } };
    }
    const reportFor = (node: UpdatingNode, v: string) => node.updates.recent.find((r) => r.version === v);

    it('trusting an owner in mesh.trust does not let it replace my models (models.trust: my own owner by default)', async () => {
      const dir = path.join(testDir(), 'cfg');
      const other = await ownerKeyOf(path.join(testDir(), 'other'));
      const own = await ownerKeyOf(dir);
      const config = parseConfig({ node: { dataDir: dir }, mesh: { trust: { owners: [{ name: 'neighbour', publicKey: other }] } } });
      const trust = await modelTrustFromConfig(config);
      expect([...trust.owners.keys()]).toEqual([own]);
      const widened = await modelTrustFromConfig(parseConfig({ node: { dataDir: dir }, models: { trust: { owners: [{ name: 'neighbour', publicKey: other }] } } }));
      expect([...widened.owners.keys()].sort()).toEqual([other, own].sort());

      // On a real mesh: b accepts a's data (mesh.trust) but runs a's model release only if models.trust says so.
      const { publisher, receiver, keyOf, owners } = await publisherAndReceiver(({ b }) => ({ trust: { owners: new Map([[b, 'me']]), revoked: new Set(), own: b } }));
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('a'), { version: '0.2.0', seed: 21 }));
      await waitFor(() => receiver.mesh.counters.get('models.updates.refused') === 1, 20_000, status);
      expect(reportFor(receiver, '0.2.0')).toMatchObject({ status: 'refused', code: 'APIARY_MODEL_SIGNER_UNTRUSTED' });
      expect(version(receiver)).toBe('0.1.0');
      await publisher.mesh.mesh.append('reading', { after: 'refusal' });
      const head = publisher.mesh.mesh.store.head(publisher.mesh.node.nodeId).seq;
      await waitFor(() => receiver.mesh.mesh.store.head(publisher.mesh.node.nodeId).seq === head, 20_000, status); // the data still flows
      expect(owners.a).not.toBe(owners.b);
    });

    it('pins the first signer of a model: another trusted signer is refused until the config names it', async () => {
      const { publisher, receiver, keyOf, owners } = await publisherAndReceiver(() => ({}));
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('a'), { version: '0.2.0', seed: 31 }));
      const pins = path.join(receiver.mesh.dir, 'model-signers.json');
      await waitFor(() => version(receiver) === '0.2.0' && existsSync(pins), 20_000, status);
      expect(JSON.parse(await readFile(pins, 'utf8'))).toEqual({ version: 1, signers: { [SOUND_MODEL]: owners.a } });
      // m is trusted for models too, but a installed hive-sound first.
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('m'), { version: '0.3.0', seed: 32 }));
      await waitFor(() => reportFor(receiver, '0.3.0') !== undefined, 20_000, status);
      expect(reportFor(receiver, '0.3.0')).toMatchObject({ status: 'refused', code: 'APIARY_MODEL_SIGNER_UNTRUSTED' });
      expect(reportFor(receiver, '0.3.0')?.reason).toContain(`pinned to signer ${owners.a}`);
      expect(version(receiver)).toBe('0.2.0');
      // The owner hands the model over in the config: m's next release installs.
      await receiver.updates.stop();
      await receiver.inference.stop();
      const restarted = await startUpdater(receiver.mesh, receiver.mesh.dir, [owners.a, owners.b, owners.m], { own: owners.b, signers: { [SOUND_MODEL]: owners.m } });
      try {
        await publisher.updates.publish(await makeRelease(testDir(), keyOf('m'), { version: '0.4.0', seed: 33 }));
        await waitFor(() => restarted.inference.loaded(SOUND_MODEL)?.manifest.version === '0.4.0', 20_000, status);
      } finally {
        await restarted.updates.stop();
        await restarted.inference.stop();
      }
    });

    it('refuses a release whose features or labels do not fit the node, and counts it', async () => {
      const { publisher, receiver, keyOf } = await publisherAndReceiver(() => ({}));
      const renamedLabel = await makeRelease(testDir(), keyOf('a'), { version: '0.2.0', seed: 41, edit: (m) => { m.outputs[0]?.labels.splice(2, 1, 'swarming'); } });
      const newFeature = await makeRelease(testDir(), keyOf('a'), { version: '0.2.1', seed: 42, edit: (m) => { const f = m.inputs[0]?.features[0]; if (f) f.name = 'made_up_feature'; } });
      await publisher.updates.publish(renamedLabel).catch(() => undefined);
      await publisher.updates.publish(newFeature).catch(() => undefined);
      await waitFor(() => receiver.mesh.counters.get('models.updates.refused') === 2, 20_000, status);
      expect(reportFor(receiver, '0.2.0')).toMatchObject({ status: 'refused', code: 'APIARY_MODEL_UPDATE_INVALID' });
      expect(reportFor(receiver, '0.2.0')?.reason).toContain('no label swarm, which decision rules here watch');
      expect(reportFor(receiver, '0.2.1')?.reason).toContain('reads features this node does not compute (made_up_feature)');
      expect(version(receiver)).toBe('0.1.0');
      // An honest release still installs afterwards.
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('a'), { version: '0.3.0', seed: 43 }));
      await waitFor(() => version(receiver) === '0.3.0', 20_000, status);
    });

    it('a huge version number does not lock out later genuine updates; the owner can reset another signer\'s version', async () => {
      const { publisher, receiver, keyOf } = await publisherAndReceiver(() => ({}));
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('a'), { version: '999.0.0', seed: 51 }));
      await waitFor(() => reportFor(receiver, '999.0.0') !== undefined, 20_000, status);
      expect(reportFor(receiver, '999.0.0')).toMatchObject({ status: 'refused', code: 'APIARY_MODEL_UPDATE_INVALID' });
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('a'), { version: '1.0.0', seed: 52 }));
      await waitFor(() => version(receiver) === '1.0.0', 20_000, status);
      // The receiver's own owner puts back an older version over a's: a reset, accepted from it alone.
      await publisher.updates.publish(await makeRelease(testDir(), keyOf('b'), { version: '0.5.0', seed: 53 }));
      await waitFor(() => version(receiver) === '0.5.0', 20_000, status);
      expect(receiver.mesh.counters.get('models.updates.refused')).toBe(1);
    });

    it('rolls back a model that refuses its inputs in service, as one that gives invalid outputs', async () => {
      const dir = path.join(testDir(), 'a');
      const a = await startUpdatingNode('a', dir, [await ownerKeyOf(dir)]);
      nodes.push(a.mesh);
      // Installed by hand (no release check): it reads a feature the node never computes; its self-test feeds the manifest's own features.
      const release = await makeRelease(testDir(), path.join(dir, 'owner.json'), { version: '0.2.0', seed: 61, edit: (m) => { const f = m.inputs[0]?.features[3]; if (f) f.name = 'made_up_feature'; } });
      const restarted = await installByHandAndRestart(a, dir, release);
      try {
        expect(restarted.inference.loaded(SOUND_MODEL)?.manifest.version).toBe('0.2.0');
        const random = mulberry32(62);
        const frame = { t: 0, sampleRate: 2205, samples: Float32Array.from({ length: 2205 }, () => random() * 0.2 - 0.1) };
        await expect(restarted.inference.onAudio(frame)).rejects.toMatchObject({ code: 'APIARY_MODEL_INPUT_INVALID' });
        await waitFor(() => a.mesh.counters.get('models.updates.rolled_back') === 1, 10_000, status);
        expect(restarted.inference.loaded(SOUND_MODEL)?.manifest.version).toBe('0.1.0');
        expect(restarted.updates.recent.at(-1)).toMatchObject({ status: 'rolled-back', code: 'APIARY_MODEL_INPUT_INVALID', running: { version: '0.1.0' } });
      } finally {
        await restarted.updates.stop();
        await restarted.inference.stop();
      }
    });
  });
});
