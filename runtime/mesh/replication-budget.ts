/**
 * How much of other nodes' feeds this node keeps (issue 10, finding 3). Any
 * trusted owner can mint node ids, each an origin with its own retention
 * (mesh.retention.maxBytesPerOrigin), so per-origin bounds alone do not
 * bound the disk. Two more bounds:
 *
 * - originsPerOwner: feeds kept per owner key; an entry of a further origin
 *   of that owner is refused (counted) before its feed is created.
 * - maxFeedBytes: all feeds but this node's own together. Past it the oldest
 *   segment of the heaviest origin of the heaviest owner goes first, so an
 *   owner that mints many origins shares the disk as one owner, and one
 *   chatty origin cannot push out the quiet ones. This node's own feed is
 *   never evicted for others.
 */

export interface FeedBudgetSettings {
  readonly originsPerOwner: number;
  readonly maxFeedBytes: number;
}

export interface FeedUsage {
  readonly origin: string;
  /** Owner key of the origin's certificate; undefined when not known (then it counts as an owner of its own). */
  readonly owner: string | undefined;
  readonly bytes: number;
  /** Bytes that can be dropped now (sealed segments; the active one stays). */
  readonly droppable: number;
}

/** True if an owner already holding `held` origins may have one more. */
export function admitsOrigin(held: number, settings: FeedBudgetSettings): boolean {
  return held < settings.originsPerOwner;
}

/**
 * The origin to drop the oldest segment of, to make room: the heaviest
 * owner (bytes summed over its origins) that has something droppable, then
 * its heaviest droppable origin. Ties go to the smaller id, so every node
 * picks alike. Undefined when nothing can be dropped.
 */
export function chooseEviction(usage: readonly FeedUsage[]): string | undefined {
  const owners = new Map<string, { bytes: number; candidates: FeedUsage[] }>();
  for (const feed of usage) {
    const key = feed.owner ?? `origin:${feed.origin}`;
    const group = owners.get(key) ?? { bytes: 0, candidates: [] };
    group.bytes += feed.bytes;
    if (feed.droppable > 0) group.candidates.push(feed);
    owners.set(key, group);
  }
  let best: { key: string; bytes: number; candidates: FeedUsage[] } | undefined;
  for (const [key, group] of owners) {
    if (group.candidates.length === 0) continue;
    if (!best || group.bytes > best.bytes || (group.bytes === best.bytes && key < best.key)) best = { key, ...group };
  }
  if (!best) return undefined;
  const heaviest = [...best.candidates].sort((a, b) => b.bytes - a.bytes || a.origin.localeCompare(b.origin))[0];
  return heaviest?.origin;
}
