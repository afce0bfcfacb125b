/**
 * The broadcast tree's rules (broadcast-tree.ts), step by step on a manual
 * clock: what is pushed, announced, pruned and grafted, and when.
 */
import { describe, expect, it } from 'vitest';
import { BroadcastTree, MAX_AWAITED_ORIGINS, type TreeScheduler } from '../../../runtime/mesh/broadcast-tree.js';

class ManualClock implements TreeScheduler {
  private t = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number { return this.t; }
  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => { timer.live = false; };
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      next.live = false;
      next.fn();
    }
    this.t = until;
  }
}

function bed() {
  const clock = new ManualClock();
  const heads: Record<string, number> = {};
  const sent: string[] = [];
  const counted: Record<string, number> = {};
  const tree = new BroadcastTree({
    scheduler: clock, graftTimeoutMs: 1000, announceDelayMs: 100,
    head: (origin) => heads[origin] ?? 0,
    sendAnnounce: (peer, have) => sent.push(`ihave ${peer} ${JSON.stringify(have)}`),
    sendPrune: (peer) => sent.push(`prune ${peer}`),
    sendGraft: (peer, want) => sent.push(`graft ${peer} ${JSON.stringify(want)}`),
    count: (name, by = 1) => { counted[name] = (counted[name] ?? 0) + by; },
  });
  return { clock, heads, sent, counted, tree };
}

describe('the broadcast tree', () => {
  it('pushes to every link at first; a duplicate push prunes its sender to lazy, which then gets batched announcements', () => {
    const { clock, sent, tree } = bed();
    for (const p of ['a', 'b', 'c']) { tree.peerUp(p); tree.speaks(p); }
    expect(tree.spread([{ origin: 'x', seq: 1 }], undefined, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    tree.duplicate('b');
    expect(sent).toEqual(['prune b']);
    expect(tree.spread([{ origin: 'x', seq: 2 }, { origin: 'y', seq: 7 }], 'a', ['a', 'b', 'c'])).toEqual(['c']);
    tree.spread([{ origin: 'x', seq: 3 }], 'a', ['a', 'b', 'c']);
    clock.advance(99);
    expect(sent).toEqual(['prune b']);
    clock.advance(1);
    expect(sent).toEqual(['prune b', 'ihave b {"x":3,"y":7}']);
    expect(tree.status()).toMatchObject({ eager: ['a', 'c'], lazy: ['b'] });
  });

  it('never prunes a peer that does not speak the protocol (an older node): it stays eager', () => {
    const { sent, tree } = bed();
    tree.peerUp('old');
    tree.duplicate('old');
    expect(sent).toEqual([]);
    expect(tree.spread([{ origin: 'x', seq: 1 }], undefined, ['old'])).toEqual(['old']);
  });

  it('a prune received makes the link lazy; a graft received makes it eager again', () => {
    const { tree } = bed();
    tree.peerUp('a');
    tree.onPrune('a');
    expect(tree.isEager('a')).toBe(false);
    tree.onGraft('a');
    expect(tree.isEager('a')).toBe(true);
  });

  it('an announced entry that the tree does not bring in time is grafted from its announcers, one after another', () => {
    const { clock, heads, sent, tree, counted } = bed();
    for (const p of ['a', 'b', 'c']) { tree.peerUp(p); tree.onPrune(p); }
    heads.x = 4;
    tree.onAnnounce('b', { x: 6 });
    tree.onAnnounce('c', { x: 5 });
    tree.onAnnounce('a', { x: 4 }); // held already: nothing awaited from a
    clock.advance(999);
    expect(sent).toEqual([]);
    clock.advance(1);
    expect(sent).toEqual(['graft b {"x":5}']);
    expect(tree.isEager('b')).toBe(true);
    // b does not deliver either: half a timeout later, the next announcer.
    clock.advance(500);
    expect(sent).toEqual(['graft b {"x":5}', 'graft c {"x":5}']);
    expect(counted['mesh.tree.grafts']).toBe(2);
    // Nobody left: it is left to anti-entropy.
    clock.advance(10_000);
    expect(sent).toHaveLength(2);
  });

  it('an entry that arrives on the tree in time cancels the graft', () => {
    const { clock, heads, sent, tree } = bed();
    tree.peerUp('a');
    tree.onPrune('a');
    tree.onAnnounce('a', { x: 2 });
    heads.x = 2;
    tree.spread([{ origin: 'x', seq: 2 }], 'z', ['a']);
    clock.advance(5_000);
    expect(sent.filter((m) => m.startsWith('graft'))).toEqual([]);
  });

  it('awaits a bounded number of origins: a flood of announcements is not followed past it', () => {
    const { tree, counted } = bed();
    tree.peerUp('a');
    const have = Object.fromEntries(Array.from({ length: MAX_AWAITED_ORIGINS + 10 }, (_, i) => [`o${i}`, 1]));
    tree.onAnnounce('a', have);
    expect(tree.status().awaited).toBe(MAX_AWAITED_ORIGINS);
    expect(counted['mesh.tree.awaited_full']).toBe(10);
  });

  it('a link that goes down is no longer pushed to, announced to or grafted; stop cancels every timer', () => {
    const { clock, sent, tree } = bed();
    for (const p of ['a', 'b']) { tree.peerUp(p); tree.onPrune(p); }
    tree.spread([{ origin: 'x', seq: 1 }], undefined, ['a', 'b']);
    tree.onAnnounce('b', { y: 3 });
    tree.peerDown('a');
    tree.peerDown('b');
    clock.advance(5_000);
    expect(sent).toEqual([]);
    tree.peerUp('a');
    tree.onAnnounce('a', { y: 3 });
    tree.stop();
    clock.advance(5_000);
    expect(sent).toEqual([]);
  });
});
