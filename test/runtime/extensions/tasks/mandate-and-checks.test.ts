/**
 * The owner's mandate and the spot-checks, between real nodes of different
 * owners on loopback: an exhausted budget sends no call and raises a pending
 * request the owner approves; a bidder refuses a requester whose mandate is
 * forged; a spot-check catches a provider that returns a wrong inference,
 * and lowers its local reputation.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { signProposal, decodeDirect, encodeDirect } from '../../../../runtime/extensions/tasks/wire.js';
import { TaskStore, type TaskRecord } from '../../../../runtime/extensions/tasks/task-store.js';
import { Ledger } from '../../../../runtime/extensions/tasks/ledger.js';
import { meshTestBed, startMeshNode, waitFor } from '../../../support/mesh-node.js';
import { meanFeatures, ownerKeysOf, paymentBook, startTaskNode, type TaskNode } from './task-bed.js';

describe('owner mandates and spot-checks', () => {
  const bed = meshTestBed('tasks-mandate');
  const stopping: TaskNode[] = [];
  const settled = (r: TaskRecord | undefined) => r?.phase === 'completed' || r?.phase === 'failed';
  const counter = (n: TaskNode, name: string) => n.mesh.counters.snapshot()[name] ?? 0;

  async function pair(requesterMandate: Parameters<typeof startTaskNode>[0]['mandate'], extra: { spotCheck?: number } = {}): Promise<{ requester: TaskNode; provider: TaskNode }> {
    const dirs = ['requester', 'provider'].map((n) => path.join(bed.dir(), n));
    const owners = await ownerKeysOf(dirs);
    const provider = await startTaskNode({ name: 'provider', dir: dirs[1] ?? '', trustedOwners: owners, payments: paymentBook(100), tasks: { offers: [{ kind: 'hive-sound', price: 2 }] } });
    const requester = await startTaskNode({
      name: 'requester', dir: dirs[0] ?? '', trustedOwners: owners, payments: paymentBook(100), mandate: requesterMandate, tasks: { spotCheck: extra.spotCheck ?? 0 },
      mesh: { neighbours: [{ url: provider.mesh.broker.url, nodeId: provider.mesh.node.nodeId }] },
    });
    stopping.push(requester, provider);
    await waitFor(() => requester.mesh.mesh.linkedPeers().length === 1 && provider.mesh.mesh.linkedPeers().length === 1, 20_000);
    return { requester, provider };
  }

  it('an exhausted daily budget sends no call and raises a pending request; approved, it goes out', async () => {
    const { requester, provider } = await pair({ dailyBudget: 3, buy: { kinds: ['hive-sound'], maxPrice: 10 } });
    try {
      await requester.agent.ledger.commit(2, Date.now()); // 2 of 3 spent today
      const record = await requester.agent.request({ kind: 'hive-sound', input: { features: meanFeatures(requester.models) }, maxPrice: 2, deadline: 20_000 });
      expect(record.phase).toBe('input-required');
      expect(record.pending).toMatch(/^budget: 2 of 3 credit spent today/);
      expect(counter(requester, 'tasks.sent.cfp')).toBe(0);
      expect(counter(requester, 'tasks.pending')).toBe(1);
      expect(requester.agent.store.all().filter((r) => r.phase === 'input-required').map((r) => r.id)).toEqual([record.id]);
      expect(counter(provider, 'tasks.calls_received')).toBe(0);
      // On disk: the pending request is there for the owner after a restart too.
      const reread = new TaskStore(path.join(bed.dir(), 'requester'));
      await reread.open();
      expect(reread.get(record.id)?.phase).toBe('input-required');

      await requester.agent.requester.approve(record.id);
      await waitFor(() => settled(requester.agent.store.get(record.id)), 15_000, () => JSON.stringify(requester.agent.store.get(record.id)));
      expect(requester.agent.store.get(record.id)?.phase).toBe('completed');
      expect(counter(provider, 'tasks.calls_received')).toBe(1);
      expect(requester.agent.ledger.spentToday(Date.now())).toBe(4);
      await expect(requester.agent.requester.approve(record.id)).rejects.toThrow(/is completed, not waiting for the owner/);
    } finally {
      await Promise.all(stopping.splice(0).map((n) => n.stop()));
    }
  });

  it('a request outside the kinds the mandate buys waits for the owner, and can be rejected', async () => {
    const { requester } = await pair({ buy: { kinds: ['reading-at'], maxPrice: 10 } });
    try {
      const record = await requester.agent.request({ kind: 'hive-sound', input: { features: meanFeatures(requester.models) }, maxPrice: 1, deadline: 20_000 });
      expect(record.pending).toBe('the mandate does not allow buying hive-sound');
      expect((await requester.agent.requester.reject(record.id)).phase).toBe('rejected');
      expect(counter(requester, 'tasks.sent.cfp')).toBe(0);
    } finally {
      await Promise.all(stopping.splice(0).map((n) => n.stop()));
    }
  });

  it('with payments off, a request is held at price 0, so a priced offer is refused on price', async () => {
    const dirs = ['requester', 'provider'].map((n) => path.join(bed.dir(), n));
    const owners = await ownerKeysOf(dirs);
    const provider = await startTaskNode({ name: 'provider', dir: dirs[1] ?? '', trustedOwners: owners, tasks: { offers: [{ kind: 'hive-sound', price: 2 }] } });
    const requester = await startTaskNode({ name: 'requester', dir: dirs[0] ?? '', trustedOwners: owners, mesh: { neighbours: [{ url: provider.mesh.broker.url, nodeId: provider.mesh.node.nodeId }] } });
    stopping.push(requester, provider);
    try {
      await waitFor(() => requester.mesh.mesh.linkedPeers().length === 1 && provider.mesh.mesh.linkedPeers().length === 1, 20_000);
      const record = await requester.agent.request({ kind: 'hive-sound', input: { features: meanFeatures(requester.models) }, maxPrice: 3, deadline: 20_000 });
      expect(record.maxPrice).toBe(0);
      expect(record.note).toMatch(/^payments are off on this node: max price held at 0 \(was 3\)/);
      await waitFor(() => settled(requester.agent.store.get(record.id)), 15_000);
      expect(requester.agent.store.get(record.id)).toMatchObject({ phase: 'failed', failure: 'no bids', refusals: [{ bidder: provider.mesh.node.nodeId, reason: 'price' }] });
      expect(requester.agent.status()).toMatchObject({ payments: 'off (tasks run at price 0)' });
    } finally {
      await Promise.all(stopping.splice(0).map((n) => n.stop()));
    }
  });

  it('a spot-check catches a wrong inference result and lowers the provider\'s reputation', async () => {
    const dirs = ['requester', 'liar'].map((n) => path.join(bed.dir(), n));
    const owners = await ownerKeysOf(dirs);
    // The liar is a real mesh node of another owner that speaks the protocol by hand: it bids, acknowledges, and returns a wrong label.
    const liar = await startMeshNode({ name: 'liar', dir: dirs[1] ?? '', trustedOwners: owners });
    bed.nodes.push(liar);
    const requester = await startTaskNode({
      name: 'requester', dir: dirs[0] ?? '', trustedOwners: owners, tasks: { spotCheck: 1 },
      mesh: { neighbours: [{ url: liar.broker.url, nodeId: liar.node.nodeId }] },
    });
    stopping.push(requester);
    try {
      await waitFor(() => requester.mesh.mesh.linkedPeers().length === 1 && liar.mesh.linkedPeers().length === 1, 20_000);
      const model = requester.models.loaded('hive-sound');
      if (!model) throw new Error('the shipped hive-sound model did not load');
      liar.mesh.on('task', (from, line) => {
        const message = decodeDirect(line);
        if (message?.m !== 'cfp') return;
        const proposal = signProposal(liar.node, {
          task: message.task, requester: from, bidder: liar.node.nodeId, kind: message.kind, price: 0, unit: message.unit, eta: 100, validUntil: message.deadline,
          model: { name: model.manifest.name, version: model.manifest.version, sha256: model.sha256 },
        });
        liar.mesh.sendTask(from, encodeDirect({ m: 'propose', proposal }));
      });
      liar.mesh.on('private', (message) => {
        if (message.type !== 'task-award') return;
        const { task, attempt, input } = message.body as { task: string; attempt: number; input: { features: Record<string, number> } };
        void (async () => {
          const truth = await model.predict(input.features);
          const wrong = model.manifest.outputs[0]?.labels.find((l) => l !== truth.label) ?? 'swarm';
          await liar.mesh.appendPrivate('task-ack', { task, attempt }, [message.origin]);
          await liar.mesh.appendPrivate('task-result', { task, attempt, output: { model: model.manifest.name, version: model.manifest.version, sha256: model.sha256, label: wrong, probabilities: truth.probabilities } }, [message.origin]);
        })();
      });
      const record = await requester.agent.request({ kind: 'hive-sound', input: { features: meanFeatures(requester.models) }, maxPrice: 0, deadline: 20_000 });
      await waitFor(() => settled(requester.agent.store.get(record.id)), 15_000, () => JSON.stringify(requester.agent.store.get(record.id)));
      const done = requester.agent.store.get(record.id);
      expect(done?.phase).toBe('failed');
      expect(done?.check?.verdict).toBe('failed');
      expect(done?.check?.detail).toMatch(/^label .+, re-run gives /);
      expect(requester.agent.ledger.reputation(liar.node.nodeId)).toMatchObject({ results: 1, checks: 1, failedChecks: 1 });
      expect(requester.agent.ledger.score(liar.node.nodeId)).toBeLessThan(0.5);
      expect(counter(requester, 'tasks.checks_failed')).toBe(1);
      // Kept on disk: the reputation survives a restart of the agent.
      await requester.agent.stop();
      const again = new Ledger(dirs[0] ?? '');
      await again.open();
      expect(again.reputation(liar.node.nodeId).failedChecks).toBe(1);
    } finally {
      await Promise.all(stopping.splice(0).map((n) => n.stop()));
    }
  });
});
