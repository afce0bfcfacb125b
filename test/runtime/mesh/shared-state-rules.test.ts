/**
 * The write rules of the shared document, on real state stores: each kind of
 * rule gives effect to the ops it allows and to no other, whatever order they
 * arrive in; a node refuses to sign what its rules do not let it write.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { Counters } from '../../../runtime/counters.js';
import { ErrorCodes } from '../../../runtime/errors.js';
import { loadOrCreateIdentity } from '../../../runtime/identity/identity.js';
import { MemberDirectory } from '../../../runtime/mesh/member-directory.js';
import { loadMeshIdentity, type MeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { OPS_MAP, SharedDocument, type SharedStateRules } from '../../../runtime/mesh/shared-state-rules.js';
import { SharedState } from '../../../runtime/mesh/shared-state.js';
import { signStateOp, stateOpId } from '../../../runtime/mesh/state-op.js';

describe('shared-state write rules', () => {
  let dir: string;
  const opened: { stop(): Promise<void> }[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-rules-'));
  });
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A node of owner `owner` (a key file name); its certificate. */
  async function member(name: string, owner: string): Promise<MeshIdentity> {
    const { identity: node } = await loadOrCreateIdentity(path.join(dir, name));
    return loadMeshIdentity({ dataDir: path.join(dir, name), node, name, ownerKeyFile: path.join(dir, `${owner}.json`), now: () => Date.now() });
  }

  async function documentOf(me: MeshIdentity, others: MeshIdentity[], rules: SharedStateRules) {
    const counters = new Counters();
    const owners = new Set([me, ...others].map((m) => m.certificate.owner));
    const directory = new MemberDirectory({ file: path.join(dir, `${me.node.nodeId}-members.json`), policy: { owners, revoked: new Set(), pinned: new Map() }, counters, self: me.certificate });
    await directory.start();
    for (const o of others) directory.learn(o.certificate);
    const late: { shared?: SharedDocument } = {}; // the document checks the state's updates, and reads the state
    const state = new SharedState({ dir: path.join(dir, `${me.node.nodeId}-state`), counters, segmentBytes: 64 * 1024, admit: (doc, update) => late.shared?.admit(doc, update) });
    await state.start();
    opened.push(state, directory);
    const shared = new SharedDocument({ state, identity: me.node, directory, owner: me.certificate.owner, rules, clock: () => ({ l: Date.now(), c: 0 }), maxAheadMs: 60_000, now: () => Date.now(), counters });
    late.shared = shared;
    return { state, shared, counters };
  }

  /** An update adding `author`'s signed op, as a peer would send it. */
  function opUpdate(author: MeshIdentity, map: string, k: string, value: unknown, l: number): Uint8Array {
    const doc = new Y.Doc();
    const op = signStateOp(author.node, { map, k, value, hlc: { l, c: 0 } });
    doc.getMap(OPS_MAP).set(stateOpId(op), JSON.stringify(op));
    return Y.encodeStateAsUpdate(doc);
  }

  it('gives effect to what each rule allows, the same whatever the arrival order', async () => {
    const me = await member('me', 'owner-1');
    const sibling = await member('sibling', 'owner-1');
    const neighbour = await member('neighbour', 'owner-2');
    const stranger = await member('stranger', 'owner-3');
    const rules: SharedStateRules = { maps: { catalogue: [neighbour.certificate.owner], capabilities: 'key-node', notes: 'any-trusted' }, otherMaps: 'my-owner' };
    const t = Date.now();
    const updates = [
      opUpdate(neighbour, 'catalogue', 'hive-sound', '2.0.0', t + 1), // allowed: its owner is listed
      opUpdate(stranger, 'catalogue', 'hive-sound', '6.6.6', t + 2), // not listed: no effect, though later
      opUpdate(stranger, 'capabilities', stranger.node.nodeId, ['audio'], t), // its own key: allowed
      opUpdate(stranger, 'capabilities', neighbour.node.nodeId, ['none'], t), // another node's key: no effect
      opUpdate(sibling, 'thresholds', 'swarming', 0.8, t), // my owner: allowed
      opUpdate(neighbour, 'thresholds', 'swarming', 0.1, t + 5), // another owner: no effect
      opUpdate(stranger, 'notes', 'hello', 'hi', t), // any trusted node
    ];
    const forward = await documentOf(me, [sibling, neighbour, stranger], rules);
    for (const u of updates) expect(await forward.state.applyRemote(u, 'peer')).toBe(true);
    const backward = await documentOf(await member('me-too', 'owner-1'), [sibling, neighbour, stranger], rules);
    for (const u of [...updates].reverse()) expect(await backward.state.applyRemote(u, 'peer')).toBe(true);

    expect(forward.shared.toJSON()).toMatchObject({
      catalogue: { 'hive-sound': '2.0.0' },
      capabilities: { [stranger.node.nodeId]: ['audio'] },
      thresholds: { swarming: 0.8 },
      notes: { hello: 'hi' },
    });
    expect(forward.shared.get('capabilities', neighbour.node.nodeId)).toBeUndefined();
    expect(forward.counters.get('mesh.rejected.state_unauthorised')).toBe(3);
    expect(backward.shared.canonical()).toBe(forward.shared.canonical());

    // This node may not sign what its rules do not let it write; a later set of what it may write wins.
    await expect(forward.shared.set('catalogue', 'hive-sound', '3.0.0')).rejects.toMatchObject({ code: ErrorCodes.SHARED_STATE_FORBIDDEN });
    await forward.shared.set('thresholds', 'swarming', 0.9);
    expect(forward.shared.get('thresholds', 'swarming')).toBe(0.9);
  });
});
