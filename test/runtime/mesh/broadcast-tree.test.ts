/**
 * The broadcast tree's rules (broadcast-tree.ts), step by step on a manual
 * clock: what is pushed, announced, pruned and grafted, and when.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastTree, MAX_AWAITED_ORIGINS, MAX_TREES } from '../../../runtime/mesh/broadcast-tree.js';
import { SimClock } from '../../sim/sim-clock.js';

function bed() {
  const clock = new SimClock();
  /** Runs the timers due within `ms` of simulated time. */
  const advance = (ms: number) => clock.run(clock.now() + ms);
  const heads: Record<string, number> = {};
  const sent: string[] = [];
  const counted: Record<string, number> = {};
  const tree = new BroadcastTree({
    scheduler: clock, graftTimeoutMs: 1000, announceDelayMs: 100,
    head: (origin) => heads[origin] ?? 0,
    sendAnnounce: (peer, have) => sent.push(`ihave ${peer} ${JSON.stringify(have)}`),
    sendPrune: (peer, origins) => sent.push(`prune ${peer} ${origins.join(',')}`),
    sendGraft: (peer, want) => sent.push(`graft ${peer} ${JSON.stringify(want)}`),
    sendPull: (peer, want) => sent.push(`pull ${peer} ${JSON.stringify(want)}`),
    count: (name, by = 1) => { counted[name] = (counted[name] ?? 0) + by; },
  });
  return { advance, heads, sent, counted, tree };
}

describe('the broadcast tree', () => {
  it('pushes on every link at first; a duplicate push prunes its sender to lazy for that origin only, which then gets batched announcements', async () => {
    const { advance, sent, tree } = bed();
    for (const p of ['a', 'b', 'c']) tree.speaks(p);
    const linked = ['a', 'b', 'c'];
    expect(tree.spread([{ origin: 'x', seq: 1 }], undefined, linked)).toEqual(new Map([['a', [0]], ['b', [0]], ['c', [0]]]));
    tree.duplicate('b', ['x']);
    expect(sent).toEqual(['prune b x']);
    // For x, b is lazy now; for y, it is still eager.
    expect(tree.spread([{ origin: 'x', seq: 2 }, { origin: 'y', seq: 7 }], 'a', linked)).toEqual(new Map([['b', [1]], ['c', [0, 1]]]));
    tree.spread([{ origin: 'x', seq: 3 }], 'a', linked);
    await advance(99);
    expect(sent).toEqual(['prune b x']);
    await advance(1);
    expect(sent).toEqual(['prune b x', 'ihave b {"x":3}']);
    expect(tree.treeOf('x', linked)).toEqual({ eager: ['a', 'c'], lazy: ['b'] });
    expect(tree.treeOf('y', linked)).toEqual({ eager: ['a', 'b', 'c'], lazy: [] });
    expect(tree.status()).toMatchObject({ trees: 1, lazy: { b: 1 } });
  });

  it('a push from a link already pruned here says the prune again (the first was lost), counted apart from new prunes', () => {
    const { counted, sent, tree } = bed();
    tree.speaks('b');
    tree.duplicate('b', ['x']);
    tree.duplicate('b', ['x', 'y']);
    expect(sent).toEqual(['prune b x', 'prune b x,y']);
    expect(counted).toEqual({ 'mesh.tree.pruned': 2, 'mesh.tree.prunes_repeated': 1 });
  });

  it('never prunes a peer that does not speak the protocol (an older node): it stays eager', () => {
    const { sent, tree } = bed();
    tree.duplicate('old', ['x']);
    expect(sent).toEqual([]);
    expect(tree.spread([{ origin: 'x', seq: 1 }], undefined, ['old'])).toEqual(new Map([['old', [0]]]));
  });

  it('a prune received makes the link lazy for its origins; a graft received makes it eager again for the origins it wants', () => {
    const { tree } = bed();
    tree.onPrune('a', ['x', 'y']);
    expect(tree.isEager('x', 'a')).toBe(false);
    expect(tree.isEager('z', 'a')).toBe(true);
    tree.onGraft('a', ['x']);
    expect(tree.isEager('x', 'a')).toBe(true);
    expect(tree.isEager('y', 'a')).toBe(false);
  });

  it('an announced entry that the tree does not bring in time is pulled from the first announcer, then grafted from its announcers, one after another', async () => {
    const { advance, heads, sent, tree, counted } = bed();
    for (const p of ['a', 'b', 'c']) tree.onPrune(p, ['x']);
    heads.x = 4;
    tree.onAnnounce('b', { x: 6 });
    tree.onAnnounce('c', { x: 5 });
    tree.onAnnounce('a', { x: 4 }); // held already: nothing awaited from a
    await advance(999);
    expect(sent).toEqual([]);
    // A first miss is most often one lost push: asked for, the link stays lazy.
    await advance(1);
    expect(sent).toEqual(['pull b {"x":5}']);
    expect(tree.isEager('x', 'b')).toBe(false);
    // Not answered: half a timeout later b is grafted, then the next announcer.
    await advance(500);
    expect(sent).toEqual(['pull b {"x":5}', 'graft b {"x":5}']);
    expect(tree.isEager('x', 'b')).toBe(true);
    await advance(500);
    expect(sent).toEqual(['pull b {"x":5}', 'graft b {"x":5}', 'graft c {"x":5}']);
    expect(counted).toMatchObject({ 'mesh.tree.pulls': 1, 'mesh.tree.grafts': 2 });
    // Nobody left: it is left to anti-entropy.
    await advance(10_000);
    expect(sent).toHaveLength(3);
  });

  it('a pulled miss costs no graft; the same origin missed again with no push between grafts at once, a push between makes the next miss a pull again', async () => {
    const { advance, heads, sent, tree } = bed();
    tree.onPrune('b', ['x']);
    heads.x = 4;
    tree.onAnnounce('b', { x: 5 });
    await advance(1000);
    expect(sent).toEqual(['pull b {"x":5}']);
    heads.x = 5; // the pull's answer: stored, not spread on the tree
    await advance(5_000);
    expect(sent).toEqual(['pull b {"x":5}']);
    // The next entry misses too: the tree does not deliver x any more.
    tree.onAnnounce('b', { x: 6 });
    await advance(1000);
    expect(sent).toEqual(['pull b {"x":5}', 'graft b {"x":6}']);
    heads.x = 6;
    tree.spread([{ origin: 'x', seq: 6 }], 'b', ['b']);
    // Delivered by the tree since: the next miss is one lost message again.
    tree.onPrune('b', ['x']);
    tree.onAnnounce('b', { x: 8 });
    await advance(1000);
    expect(sent.slice(2)).toEqual(['pull b {"x":7}']);
  });

  it('a miss after an eager link went down grafts at once: the tree lost a link, not a message', async () => {
    const { advance, heads, sent, tree } = bed();
    tree.onPrune('b', ['x']);
    tree.peerDown('a'); // eager for x
    heads.x = 4;
    tree.onAnnounce('b', { x: 5 });
    await advance(1000);
    expect(sent).toEqual(['graft b {"x":5}']);
    // A link up again (any: it is eager for every origin) makes up for it: a miss is pulled first again.
    heads.x = 5;
    await advance(1000);
    tree.onPrune('b', ['x']);
    tree.peerDown('a');
    tree.peerUp('a');
    tree.onAnnounce('b', { x: 6 });
    await advance(1000);
    expect(sent.slice(1)).toEqual(['pull b {"x":6}']);
  });

  it('an entry that arrives on the tree in time cancels the graft', async () => {
    const { advance, heads, sent, tree } = bed();
    tree.onPrune('a', ['x']);
    tree.onAnnounce('a', { x: 2 });
    heads.x = 2;
    tree.spread([{ origin: 'x', seq: 2 }], 'z', ['a']);
    await advance(5_000);
    expect(sent.filter((m) => m.startsWith('graft'))).toEqual([]);
  });

  it('awaits a bounded number of origins: a flood of announcements is not followed past it', () => {
    const { tree, counted } = bed();
    const have = Object.fromEntries(Array.from({ length: MAX_AWAITED_ORIGINS + 10 }, (_, i) => [`o${i}`, 1]));
    tree.onAnnounce('a', have);
    expect(tree.status().awaited).toBe(MAX_AWAITED_ORIGINS);
    expect(counted['mesh.tree.awaited_full']).toBe(10);
  });

  it('keeps a bounded number of trees: past it, a new origin stays eager on every link (counted)', () => {
    const { tree, counted } = bed();
    for (let i = 0; i < MAX_TREES + 3; i++) tree.onPrune('a', [`o${i}`]);
    expect(tree.status().trees).toBe(MAX_TREES);
    expect(counted['mesh.tree.trees_full']).toBe(3);
    expect(tree.isEager(`o${MAX_TREES + 1}`, 'a')).toBe(true);
  });

  it('a link that goes down is no longer announced to or grafted, and comes back eager; stop cancels every timer', async () => {
    const { advance, sent, tree } = bed();
    for (const p of ['a', 'b']) tree.onPrune(p, ['x', 'y']);
    tree.spread([{ origin: 'x', seq: 1 }], undefined, ['a', 'b']);
    tree.onAnnounce('b', { y: 3 });
    tree.peerDown('a');
    tree.peerDown('b');
    await advance(5_000);
    expect(sent).toEqual([]);
    tree.peerUp('a');
    expect(tree.isEager('x', 'a')).toBe(true);
    tree.onAnnounce('a', { y: 3 });
    tree.stop();
    await advance(5_000);
    expect(sent).toEqual([]);
  });
});
