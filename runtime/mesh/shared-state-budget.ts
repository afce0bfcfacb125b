/**
 * Bounds on the shared document (issue 10, finding 3): keys (over all maps,
 * top-level names included) and encoded bytes. A remote update is checked
 * before it is written ahead or applied, against the document it would make.
 *
 * Yjs merges updates: a diff a peer sends (encodeStateAsUpdate against our
 * state vector) can hold one writer's flood and another's honest edit
 * together. Refused whole, the honest edit would be refused with it on every
 * anti-entropy round. So an update over the budget is cut by writer (Yjs
 * client id, ascending, so every node cuts alike) and each writer's part is
 * taken if the document still fits with it; the parts that do not fit are
 * refused and counted. Honest nodes far below the bounds take every update
 * and converge as before; at the bounds, what each node holds can differ only
 * by refused (counted) parts.
 *
 * Cost: a cheap upper bound (structs in the update, bytes since the last
 * exact size) admits the common case; only near the bounds is the update
 * tried on a scratch copy of the document (a few ms for the default 2 MiB).
 */
import * as Y from 'yjs';
import type { Counters } from '../counters.js';

export interface SharedBudgetSettings {
  readonly sharedKeys: number;
  readonly sharedBytes: number;
}

/** Keys of a document: every top-level name and every key of the maps under it. */
export function documentKeys(doc: Y.Doc): number {
  let keys = 0;
  for (const name of doc.share.keys()) {
    keys += 1;
    try {
      keys += doc.getMap(name).size;
    } catch {
      // A top-level type that is not a map: its content counts in bytes only.
    }
  }
  return keys;
}

export class SharedStateBudget {
  /** Encoded size of the document when last measured, and bytes applied since (an upper bound on growth). */
  private measured: number | undefined;
  private since = 0;

  constructor(private readonly settings: SharedBudgetSettings, private readonly counters: Counters) {}

  /** Local edits are this node's own: never refused, but they use the budget. */
  noteApplied(bytes: number): void {
    this.since += bytes;
  }

  /**
   * The part of `update` the document can take (all of it, a part, or
   * undefined for nothing). `update` was decoded once already (well-formed).
   */
  admit(doc: Y.Doc, update: Uint8Array): Uint8Array | undefined {
    const { sharedKeys, sharedBytes } = this.settings;
    const structs = Y.decodeUpdate(update).structs.length;
    this.measured ??= Y.encodeStateAsUpdate(doc).length;
    if (documentKeys(doc) + structs <= sharedKeys && this.measured + this.since + update.length <= sharedBytes) {
      this.since += update.length;
      return update;
    }
    const whole = copyOf(doc);
    if (!this.overBy(whole, update)) return this.taken(update, whole);
    const parts: Uint8Array[] = [];
    const result = copyOf(doc);
    for (const part of byWriter(update)) {
      const over = this.overBy(copyOf(result), part);
      if (over) {
        this.counters.increment(`mesh.rejected.state_${over}`);
        continue;
      }
      Y.applyUpdate(result, part);
      parts.push(part);
    }
    return parts.length === 0 ? undefined : this.taken(Y.mergeUpdates(parts), result);
  }

  /** Which bound `update` breaks, applied to the scratch doc; undefined if none (and nothing is left waiting for a missing part). */
  private overBy(scratch: Y.Doc, update: Uint8Array): 'incomplete' | 'keys' | 'bytes' | undefined {
    Y.applyUpdate(scratch, update);
    if (scratch.store.pendingStructs !== null || scratch.store.pendingDs !== null) return 'incomplete';
    if (documentKeys(scratch) > this.settings.sharedKeys) return 'keys';
    if (Y.encodeStateAsUpdate(scratch).length > this.settings.sharedBytes) return 'bytes';
    return undefined;
  }

  /** `update` is taken; `result` is the document with it (its size, exact, is the new base). */
  private taken(update: Uint8Array, result: Y.Doc): Uint8Array {
    this.measured = Y.encodeStateAsUpdate(result).length;
    this.since = 0;
    return update;
  }
}

function copyOf(doc: Y.Doc): Y.Doc {
  const copy = new Y.Doc({ gc: true });
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
  return copy;
}

/** `update` cut into one update per writer (client id ascending); each keeps the whole delete set. */
function byWriter(update: Uint8Array): Uint8Array[] {
  const clients = [...new Set(Y.decodeUpdate(update).structs.map((s) => s.id.client))].sort((a, b) => a - b);
  if (clients.length <= 1) return [update];
  return clients.map((client) => {
    const others = new Map(clients.filter((c) => c !== client).map((c) => [c, 0x7fff_ffff]));
    return Y.diffUpdate(update, Y.encodeStateVector(others));
  });
}
