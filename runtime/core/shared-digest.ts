/**
 * A fingerprint of the shared document for `apiary status`: two nodes that
 * show the same sha256 hold the same document (its canonical JSON: sorted
 * keys), and the Yjs state vector (writer id -> edits seen) shows which of
 * them lacks whose edits when they differ.
 */
import { createHash } from 'node:crypto';
import * as Y from 'yjs';
import type { SharedState } from '../mesh/shared-state.js';

export interface SharedDigest {
  readonly sha256: string;
  readonly bytes: number;
  readonly stateVector: Record<string, number>;
}

export function sharedDigest(state: SharedState): SharedDigest {
  const canonical = state.canonical();
  const vector = Y.decodeStateVector(state.stateVector());
  return {
    sha256: createHash('sha256').update(canonical).digest('hex'),
    bytes: Buffer.byteLength(canonical),
    stateVector: Object.fromEntries([...vector.entries()].sort(([a], [b]) => a - b).map(([client, clock]) => [String(client), clock])),
  };
}
