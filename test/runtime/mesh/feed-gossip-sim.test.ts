/**
 * The gossip rules (feed-gossip.ts) at a size no test machine runs as real
 * nodes: 40 simulated nodes (test/sim) with real signed entries and the real
 * wire format, over a simulated network with latency, jitter, loss, a
 * partition and churn. In steady state an entry costs about one delivery per
 * node; after the heal every node holds every entry, for about one copy of
 * what was missing.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, type ScenarioPlan } from '../../sim/scenario.js';

const PLAN: ScenarioPlan = {
  nodes: 40, degree: 4, rate: 0.5, warmupMs: 10_000, steadyMs: 20_000, partitionMs: 30_000, convergeTimeoutMs: 120_000,
  network: { latencyMs: 20, jitterMs: 30, loss: 0 }, churn: 0.1, seed: 3,
};

describe('feed gossip on 40 simulated nodes', () => {
  it('steady state: about one delivery per node per entry; after a partition with churn, every node converges for about one copy of what was missing', async () => {
    const result = await runScenario(PLAN);
    expect(result.steady.written).toBeGreaterThan(300);
    // The budget: at most 1.5 duplicates per entry written, mesh-wide (flooding on 4 links each: about 2 per node).
    expect(result.steady.duplicatesPerEntry, JSON.stringify(result.steady)).toBeLessThan(1.5);
    // Bytes per node per entry: the entry itself (~310 B), its message header, and the lazy links' announcements.
    expect(result.steady.bytesPerNodePerEntry / result.steady.entryBytes, JSON.stringify(result.steady)).toBeLessThan(2);
    expect(result.heal.missingEntries).toBeGreaterThan(1000);
    expect(result.heal.convergedMs, JSON.stringify(result.heal)).toBeLessThan(60_000);
    expect(result.heal.bytesPerMissingEntryBytes, JSON.stringify(result.heal)).toBeLessThan(1.5);
  }, 120_000);

  it('converges through message loss (1 in 100 lost), found again by grafts and anti-entropy', async () => {
    const result = await runScenario({ ...PLAN, nodes: 20, network: { latencyMs: 20, jitterMs: 30, loss: 0.01 }, churn: 0, seed: 5, settings: { antiEntropyMs: 5_000 } });
    expect(result.heal.convergedMs, JSON.stringify(result.heal)).toBeLessThan(60_000);
    expect(result.steady.duplicatesPerEntry, JSON.stringify(result.steady)).toBeLessThan(1.5);
  }, 120_000);
});
