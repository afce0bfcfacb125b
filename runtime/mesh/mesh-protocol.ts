/**
 * The mesh wire protocol: what two linked nodes say to each other over MQTT.
 * Every message from node A to node B is published on
 *   <prefix>/<A>/mesh/to/<B>
 * so a peer only ever publishes under its own namespace (the broker enforces
 * it). A message is UTF-8 JSON lines: the first line is a header; an
 * `entries` message carries one feed entry per following line, so one bad
 * entry spoils only its own line.
 *
 *   hello   {t, cert, have, sv, port?, tls?, tlsCert?}  on link-up: who I am, what feeds I hold, my shared-state vector, where my broker listens
 *   have    {t, have, sv?, answers?}  what I hold now (anti-entropy, after a gap, or for a want I cannot serve); sv: answer with the state I lack
 *   want    {t, want, id?}        send me origin's entries from seq n
 *   entries {t, hops, reply, certs, starts, answers?}  + entry lines: new entries (gossip) or an answer to want `answers`
 *   state   {t, update, hops}     a shared-state (Yjs) update, base64
 *   fork    {t, hops, cert?}      + exactly two entry lines: a proof that their origin signed two histories (fork-proofs.ts), and the origin's certificate
 *   blob-want {t, blob, index}    send me chunk `index` of the blob whose sha256 is `blob` (blob-transfer.ts)
 *   blob      {t, blob, index}    + exactly one line: that chunk, base64; the asker checks it against its descriptor
 *   blob-none {t, blob, index}    I do not serve that blob (or cannot read that chunk now): ask another peer
 *   task      {t}                  + exactly one line: a contract-net message (runtime/extensions/tasks/wire.ts); may be lost
 *   ihave     {t, have}            a lazy link's announcement (broadcast-tree.ts): entries I hold now (origin -> highest seq); empty on link-up: I speak the tree protocol
 *   prune     {t, origins}         your eager pushes of these origins' entries reach me by another path too: make our link lazy for them
 *   graft     {t, want}            the tree lost me those entries: make our link eager for those origins and push them (origin -> from seq)
 *   sum       {t, ranges}          range-based reconciliation of what we hold (have-reconciliation.ts): fingerprints of ranges of origins, or
 *                                  their items; the first one on link-up also says "I reconcile": have-vectors to me may then be empty
 *   sparse    {t, origins}         the origins I hold only part of (sparse-replication.ts), all of them (after hello, and when it changes): ask a peer that holds them whole first
 */
import { z } from 'zod';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { MAX_SUM_ITEMS, MAX_SUM_RANGES, RANGE_MAX, RANGE_MIN } from './have-reconciliation.js';

/** Largest mesh message accepted: a catch-up batch (256 KiB of entries) plus headers and certificates. */
export const MAX_MESH_MESSAGE_BYTES = 512 * 1024;
/**
 * Largest `entries` message a node builds: under the broker's packet limit
 * (embedded-broker maxPacketBytes, 300 000 by default) with room for the
 * MQTT fixed header, topic and packet id (MQTT 3.1.1 section 3.3).
 */
export const MAX_ENTRIES_MESSAGE_BYTES = 256 * 1024;
/** Largest contract-net message (a call for proposals carries the requester's mandate and the task input: features, not audio). */
export const MAX_TASK_MESSAGE_BYTES = 32 * 1024;
/** Certificates in one `entries` message (one per origin it newly carries). */
export const MAX_CERTS_PER_MESSAGE = 256;
/** An entry is forwarded at most this many hops from its origin. */
export const DEFAULT_MAX_HOPS = 8;

const nodeId = z.string().regex(/^[a-z2-7]{12}$/);
const haveVector = z.record(nodeId, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).refine((v) => Object.keys(v).length <= 10_000, 'too many origins');
const wantId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const base64 = z.string().max(MAX_MESH_MESSAGE_BYTES).regex(/^[A-Za-z0-9+/]*={0,2}$/);
const blobName = z.string().regex(/^[0-9a-f]{64}$/);
/** A chunk index: a blob has at most 1 GiB / 4 KiB chunks (blob-descriptor.ts). */
const chunkIndex = z.number().int().min(0).max(262_143);
/** Origins a node says it holds sparsely (sparse-replication.ts), at most this many. */
export const MAX_SPARSE_ORIGINS = 256;

/** A range bound of a `sum` (have-reconciliation.ts): below every id, a prefix of a node id, or above every id. */
const rangeBound = z.union([z.literal(RANGE_MIN), z.literal(RANGE_MAX), z.string().regex(/^[a-z2-7]{1,12}$/)]);
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const fingerprint = z.string().regex(/^[A-Za-z0-9_-]{16}$/);
const sumRange = z.union([
  z.strictObject({ lo: rangeBound, hi: rangeBound, fp: fingerprint, n: z.number().int().min(0).max(10_000_000) }),
  z.strictObject({ lo: rangeBound, hi: rangeBound, have: z.record(nodeId, seq).refine((v) => Object.keys(v).length <= MAX_SUM_ITEMS, 'too many items'), end: z.literal(true).optional() }),
  z.strictObject({ lo: rangeBound, hi: rangeBound, eq: fingerprint }),
]);

const headerSchema = z.discriminatedUnion('t', [
  /** port/tls: where the sender's own broker listens, so a node that was not dialled can dial back. */
  z.strictObject({
    t: z.literal('hello'), cert: z.unknown(), have: haveVector, sv: base64,
    port: z.number().int().min(1).max(65_535).optional(),
    tls: z.boolean().optional(),
    /** The sender's TLS broker certificate (PEM), pinned by a node that dials back over TLS. */
    tlsCert: z.string().max(8192).regex(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/).optional(),
  }),
  /** answers: the id of the want this have answers (the sender holds nothing of what was wanted). */
  z.strictObject({ t: z.literal('have'), have: haveVector, sv: base64.optional(), answers: wantId.optional() }),
  /** id: rises with every want to one peer; the reply names it, so every origin asked up to it may be asked again. */
  z.strictObject({ t: z.literal('want'), want: z.record(nodeId, z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)), id: wantId.optional() }),
  z.strictObject({
    t: z.literal('entries'),
    hops: z.number().int().min(0).max(255),
    /** An answer to a want (true), or new entries spreading (false). */
    reply: z.boolean(),
    certs: z.array(z.unknown()).max(MAX_CERTS_PER_MESSAGE),
    /** Origins whose entries here start later than wanted: the earlier ones are gone at the sender. */
    starts: z.record(nodeId, z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)),
    /** For a reply: the id of the want it answers (a batch holds at most 256 KiB, so maybe not all of it). */
    answers: wantId.optional(),
  }),
  z.strictObject({ t: z.literal('state'), update: base64, hops: z.number().int().min(0).max(255) }),
  z.strictObject({ t: z.literal('fork'), hops: z.number().int().min(0).max(255), cert: z.unknown().optional() }),
  z.strictObject({ t: z.literal('blob-want'), blob: blobName, index: chunkIndex }),
  z.strictObject({ t: z.literal('blob'), blob: blobName, index: chunkIndex }),
  z.strictObject({ t: z.literal('blob-none'), blob: blobName, index: chunkIndex }),
  z.strictObject({ t: z.literal('task') }),
  z.strictObject({ t: z.literal('ihave'), have: haveVector }),
  z.strictObject({ t: z.literal('prune'), origins: z.array(nodeId).min(1).max(256) }),
  z.strictObject({ t: z.literal('graft'), want: z.record(nodeId, z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)) }),
  z.strictObject({ t: z.literal('sparse'), origins: z.array(nodeId).max(MAX_SPARSE_ORIGINS) }),
  z.strictObject({
    t: z.literal('sum'),
    ranges: z.array(sumRange).min(1).max(MAX_SUM_RANGES)
      .refine((ranges) => ranges.reduce((n, r) => n + ('have' in r ? Object.keys(r.have).length : 0), 0) <= MAX_SUM_ITEMS, 'too many items'),
  }),
]);

export type MeshHeader = z.infer<typeof headerSchema>;
export type HaveVector = Record<string, number>;
/** A decoded message: its header, and for `entries` the raw entry lines (each verified by the feed layer). */
export interface MeshMessage {
  readonly header: MeshHeader;
  readonly lines: readonly Buffer[];
}

export function encodeMeshMessage(header: MeshHeader, lines: readonly Buffer[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from(JSON.stringify(header), 'utf8')];
  for (const line of lines) parts.push(Buffer.from('\n'), line);
  return Buffer.concat(parts);
}

/** Parses a message from a peer; throws MESH_MESSAGE_INVALID with the reason. */
export function decodeMeshMessage(payload: Buffer): MeshMessage {
  if (payload.length > MAX_MESH_MESSAGE_BYTES) throw invalid(`message of ${payload.length} bytes exceeds ${MAX_MESH_MESSAGE_BYTES}`);
  const end = payload.indexOf(0x0a);
  const headerBytes = end < 0 ? payload : payload.subarray(0, end);
  let raw: unknown;
  try {
    raw = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    throw invalid('the header is not JSON');
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) throw invalid(`bad header: ${parsed.error.issues.map((i) => `${i.path.join('.') || 't'}: ${i.message}`).join('; ')}`);
  const lines: Buffer[] = [];
  if (end >= 0) {
    if (parsed.data.t !== 'entries' && parsed.data.t !== 'fork' && parsed.data.t !== 'blob' && parsed.data.t !== 'task') throw invalid(`a ${parsed.data.t} message has no body`);
    let start = end + 1;
    while (start < payload.length) {
      const next = payload.indexOf(0x0a, start);
      const stop = next < 0 ? payload.length : next;
      if (stop > start) lines.push(payload.subarray(start, stop));
      start = stop + 1;
    }
  }
  if (parsed.data.t === 'fork' && lines.length !== 2) throw invalid(`a fork proof is two entries, not ${lines.length}`);
  if (parsed.data.t === 'blob' && lines.length !== 1) throw invalid(`a blob chunk is one line, not ${lines.length}`);
  if (parsed.data.t === 'task' && (lines.length !== 1 || (lines[0]?.length ?? 0) > MAX_TASK_MESSAGE_BYTES)) throw invalid(`a task message is one line of at most ${MAX_TASK_MESSAGE_BYTES} bytes`);
  return { header: parsed.data, lines };
}

/** Topic of messages from `from` to `to`. */
export function meshTopic(prefix: string, from: string, to: string): string {
  return `${prefix}/${from}/mesh/to/${to}`;
}

/** The sender named by a mesh topic addressed to `me`, or undefined if the topic is not one. */
export function meshSender(prefix: string, topic: string, me: string): string | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== prefix || parts[2] !== 'mesh' || parts[3] !== 'to' || parts[4] !== me) return undefined;
  return /^[a-z2-7]{12}$/.test(parts[1] ?? '') ? parts[1] : undefined;
}

function invalid(why: string): ApiaryError {
  return new ApiaryError(ErrorCodes.MESH_MESSAGE_INVALID, `malformed mesh message: ${why}`);
}
