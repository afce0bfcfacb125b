/**
 * Who may write what in the shared document, enforced the same way on every
 * node (issue 10, finding 5).
 *
 * Yjs updates carry client ids that any peer may pick, not identities, so
 * the Yjs document is used only as a grow-only set of signed ops
 * (state-op.ts), `ops[opId] = op text`, and what a node reads is derived
 * from that set by a deterministic rule:
 *   map.k = the value of the latest (hlc, origin, id) op on map.k whose
 *   author is a trusted member allowed to write map.k by the rules.
 * The op set converges like any Yjs document (union, whatever the arrival
 * order); the derived view is a pure function of the set, the trust policy
 * and the rules, so nodes with the same trust and rules read the same
 * document, and no node can make another read an edit its author's rights
 * do not allow.
 *
 * A peer's update is checked by its effect, on a copy, before it is applied,
 * and refused whole (counted) when it does what no honest node does: content
 * outside the op set (`unsigned`), an op that is malformed, mis-keyed or
 * badly signed (`forged`), a member record not written by its own node
 * (`forged_member`), an op stamped beyond now + clock skew (`future`), the
 * removal of an op not superseded by a later op of the same author on the
 * same key (`deletes`), or parts that cannot be applied yet (`incomplete`).
 * Refusing whole never stalls honest peers: an honest node never holds such
 * content, so it never sends it. What depends on a node's own trust and
 * rules (may this author write this map?) is not refused but left without
 * effect (counted `mesh.rejected.state_unauthorised`): nodes that trust
 * different owners still exchange the same op set, and no diff is refused
 * forever.
 */
import { stat } from 'node:fs/promises';
import * as Y from 'yjs';
import { canonicalJson } from '../canonical-json.js';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import { compareHlc, MAX_HLC_COUNTER, type HlcTimestamp } from './hybrid-logical-clock.js';
import type { MemberDirectory } from './member-directory.js';
import type { JsonValue, SharedState } from './shared-state.js';
import { compareStateOps, parseStateOp, signStateOp, stateOpId, verifyStateOp, type StateOp } from './state-op.js';

/** The one top-level map of the Yjs document: op id -> op text. */
export const OPS_MAP = 'ops';
/** Each node's own record (name, owner, keys): written only by that node, whatever the rules say. */
export const MEMBERS_MAP = 'members';

/**
 * Who may write a map: `key-node` the node whose id is the key; `my-owner`
 * nodes certified by this node's owner; `any-trusted` any trusted node; or a
 * list of owner public keys whose nodes may.
 */
export type MapWriters = 'key-node' | 'my-owner' | 'any-trusted' | readonly string[];

export interface SharedStateRules {
  /** Per map; `members` is always `key-node`. */
  readonly maps: Readonly<Record<string, MapWriters>>;
  /** Maps not listed. */
  readonly otherMaps: MapWriters;
}

export type RefusalReason = 'unsigned' | 'forged' | 'forged_member' | 'future' | 'deletes' | 'incomplete' | 'malformed';

interface OpEntry {
  readonly id: string;
  readonly op: StateOp;
}

/** The ops of a document, by id; an op that does not parse (never admitted) is left out. */
function opsOf(doc: Y.Doc): Map<string, OpEntry> {
  const out = new Map<string, OpEntry>();
  for (const [id, text] of doc.getMap<unknown>(OPS_MAP).entries()) {
    try {
      out.set(id, { id, op: parseStateOp(text) });
    } catch {
      // not admitted by this node: cannot be in its document
    }
  }
  return out;
}

/**
 * What a peer's update would do to `doc`, checked on a copy: a refusal
 * reason, or undefined and the ops it adds. Pure: `doc` is not touched.
 */
export function checkStateUpdate(doc: Y.Doc, update: Uint8Array, now: number, maxAheadMs: number): { refusal: RefusalReason } | { added: OpEntry[] } {
  try {
    if (changesNothing(doc, update)) return { added: [] };
  } catch {
    return { refusal: 'malformed' };
  }
  const trial = new Y.Doc({ gc: true });
  try {
    Y.applyUpdate(trial, Y.encodeStateAsUpdate(doc));
    try {
      Y.applyUpdate(trial, update);
    } catch {
      return { refusal: 'malformed' };
    }
    if (trial.store.pendingStructs !== null || trial.store.pendingDs !== null) return { refusal: 'incomplete' };
    if ([...trial.share.keys()].some((name) => name !== OPS_MAP)) return { refusal: 'unsigned' };
    const after = trial.getMap<unknown>(OPS_MAP);
    if (after._start !== null) return { refusal: 'unsigned' }; // list items in a map: no honest node writes them
    const before = doc.getMap<unknown>(OPS_MAP);
    const added: OpEntry[] = [];
    for (const [id, text] of after.entries()) {
      const held = before.get(id);
      if (held !== undefined) {
        if (held !== text) return { refusal: 'forged' };
        continue;
      }
      if (typeof text !== 'string') return { refusal: 'unsigned' };
      let op: StateOp;
      try {
        op = verifyStateOp(parseStateOp(text));
      } catch {
        return { refusal: 'forged' };
      }
      if (stateOpId(op) !== id) return { refusal: 'forged' };
      if (op.map === MEMBERS_MAP && op.k !== op.origin) return { refusal: 'forged_member' };
      if (op.hlc.l > now + maxAheadMs) return { refusal: 'future' };
      added.push({ id, op });
    }
    const removed = [...before.keys()].filter((id) => !after.has(id));
    if (removed.length > 0) {
      const remaining = opsOf(trial);
      const held = opsOf(doc);
      for (const id of removed) {
        const gone = held.get(id);
        if (!gone) continue;
        const superseded = [...remaining.values()].some(({ op }) => op.origin === gone.op.origin && op.map === gone.op.map && op.k === gone.op.k && compareHlc(op.hlc, gone.op.hlc) > 0);
        if (!superseded) return { refusal: 'deletes' };
      }
    }
    return { added };
  } finally {
    trial.destroy();
  }
}

/** Deleted ranges longer than this are checked on a copy rather than item by item. */
const MAX_DUPLICATE_CHECK_ITEMS = 1024;

/**
 * True if `update` holds only what `doc` already has (an update arriving
 * again by another path, common in a full mesh): it is then applied without
 * the copy, which costs the size of the whole document.
 */
function changesNothing(doc: Y.Doc, update: Uint8Array): boolean {
  const known = Y.decodeStateVector(Y.encodeStateVector(doc));
  for (const [client, clock] of Y.parseUpdateMeta(update).to) if ((known.get(client) ?? 0) < clock) return false;
  const { ds } = Y.decodeUpdate(update);
  if (ds.clients.size === 0) return true;
  const deleted = Y.createDeleteSetFromStructStore(doc.store);
  let budget = MAX_DUPLICATE_CHECK_ITEMS;
  for (const [client, ranges] of ds.clients) {
    for (const range of ranges) {
      budget -= range.len;
      if (budget < 0) return false;
      for (let clock = range.clock; clock < range.clock + range.len; clock++) if (!Y.isDeleted(deleted, Y.createID(client, clock))) return false;
    }
  }
  return true;
}

export interface SharedDocumentOptions {
  state: SharedState;
  identity: NodeIdentity;
  directory: MemberDirectory;
  /** This node's owner key (for `my-owner`). */
  owner: string;
  rules: SharedStateRules;
  /** The node's hybrid logical clock. */
  clock: () => HlcTimestamp;
  /** How far ahead of our clock an op may be stamped. */
  maxAheadMs: number;
  now: () => number;
  counters: Counters;
  /** Origins whose ops have no effect (a proven fork). */
  quarantined?: (origin: string) => boolean;
}

/** The shared document as nodes read and write it: signed ops, and the view the rules derive from them. */
export class SharedDocument {
  constructor(private readonly options: SharedDocumentOptions) {}

  /** For SharedState's `admit`: refuses an update whole, or counts the ops it adds that have no effect here. */
  admit(doc: Y.Doc, update: Uint8Array): RefusalReason | undefined {
    const checked = checkStateUpdate(doc, update, this.options.now(), this.options.maxAheadMs);
    if ('refusal' in checked) return checked.refusal;
    for (const { op } of checked.added) {
      const why = this.noEffectBecause(op);
      if (why) this.options.counters.increment(why === 'unknown_author' ? 'mesh.state_author_unknown' : `mesh.rejected.state_${why}`);
    }
    return undefined;
  }

  /** Why an op has no effect in this node's view, or undefined if it counts. */
  noEffectBecause(op: StateOp): 'unknown_author' | 'unauthorised' | 'quarantined' | undefined {
    const { directory, rules, owner: myOwner } = this.options;
    if (directory.verdict(op.origin, op.key) !== 'trusted') return 'unknown_author';
    if (this.options.quarantined?.(op.origin)) return 'quarantined';
    const writers = op.map === MEMBERS_MAP ? 'key-node' : (rules.maps[op.map] ?? rules.otherMaps);
    const owner = directory.get(op.origin)?.owner;
    const allowed = writers === 'key-node' ? op.k === op.origin
      : writers === 'my-owner' ? owner === myOwner
        : writers === 'any-trusted' ? true
          : owner !== undefined && writers.includes(owner);
    return allowed ? undefined : 'unauthorised';
  }

  /** The winning op per map.k among those with effect here. */
  private winners(): Map<string, Map<string, OpEntry>> {
    const out = new Map<string, Map<string, OpEntry>>();
    const all: Map<string, OpEntry> = this.options.state.read(opsOf);
    for (const entry of all.values()) {
      if (this.noEffectBecause(entry.op)) continue;
      let byKey = out.get(entry.op.map);
      if (!byKey) out.set(entry.op.map, (byKey = new Map<string, OpEntry>()));
      const held = byKey.get(entry.op.k);
      if (!held || compareStateOps(entry, held) > 0) byKey.set(entry.op.k, entry);
    }
    return out;
  }

  /** The document as this node reads it: `{ members, thresholds, catalogue, ... }`. */
  toJSON(): Record<string, Record<string, JsonValue>> {
    const out: Record<string, Record<string, JsonValue>> = {};
    const winners = this.winners();
    for (const map of [...winners.keys()].sort()) {
      const byKey = winners.get(map) as Map<string, OpEntry>;
      out[map] = Object.fromEntries([...byKey.keys()].sort().map((k) => [k, JSON.parse((byKey.get(k) as OpEntry).op.value) as JsonValue]));
    }
    return out;
  }

  /** Canonical text of the view: equal on two nodes iff they read the same document. */
  canonical(): string {
    return canonicalJson(this.toJSON());
  }

  get(map: string, k: string): JsonValue | undefined {
    const entry = this.winners().get(map)?.get(k);
    return entry && (JSON.parse(entry.op.value) as JsonValue);
  }

  /**
   * Sets map.k as this node (signed, durable, then sent to every peer). Its
   * time orders after the value it replaces, so the latest set wins even
   * against a board whose clock runs ahead; this node's older ops on map.k
   * are removed (superseded), so the document does not grow with each set.
   * Throws SHARED_STATE_FORBIDDEN if the rules do not let this node write it.
   */
  async set(map: string, k: string, value: JsonValue): Promise<void> {
    const { identity } = this.options;
    const probe = signStateOp(identity, { map, k, value, hlc: this.options.clock() });
    const why = this.noEffectBecause(probe);
    if (why) {
      throw new ApiaryError(ErrorCodes.SHARED_STATE_FORBIDDEN, `this node may not write ${map}/${k} of the shared document (${why})`, {
        hint: map === MEMBERS_MAP ? 'each node writes only its own member record' : `see mesh.sharedState.maps.${map} in the config: who may write this map`,
      });
    }
    await this.options.state.edit((doc) => {
      const ops = doc.getMap<string>(OPS_MAP);
      const current = this.winners().get(map)?.get(k);
      let hlc = probe.hlc;
      if (current && compareHlc(hlc, current.op.hlc) <= 0) {
        hlc = current.op.hlc.c < MAX_HLC_COUNTER ? { l: current.op.hlc.l, c: current.op.hlc.c + 1 } : { l: current.op.hlc.l + 1, c: 0 };
      }
      const op = hlc === probe.hlc ? probe : signStateOp(identity, { map, k, value, hlc });
      for (const [id, old] of opsOf(doc)) {
        if (old.op.origin === op.origin && old.op.map === map && old.op.k === k && compareHlc(old.op.hlc, op.hlc) < 0) ops.delete(id);
      }
      ops.set(stateOpId(op), JSON.stringify(op));
    });
  }
}

/**
 * Shared state of an older version (unsigned Yjs maps, in mesh/state) is
 * left on disk but not used: no node can tell who wrote it.
 */
export async function noteLegacySharedState(dir: string, logger: Logger, counters: Counters): Promise<void> {
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) return;
  counters.increment('mesh.state_legacy_ignored');
  logger.warn({ dir, fix: `set again what you need with \`apiary shared set\`, then delete ${dir}` },
    'shared state of an older version is not used: its edits are unsigned, so no node can tell who made them');
}
