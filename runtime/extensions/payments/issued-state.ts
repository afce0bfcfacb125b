/**
 * What this node has signed, kept apart from the feed so it is never signed
 * again lower: per channel, the last voucher (seq, cumulative) it issued as
 * payer and the last settlement (n, total) it recorded as payee.
 *
 * File: <dataDir>/payments/issued.json, written atomically (temp, fsync,
 * rename) BEFORE the record is appended to the feed: a crash in between
 * leaves a number unused, never one used twice.
 *
 * Which state is authoritative: the highest of this file, this node's own
 * feed, and its own entries that peers hold and send back (the mesh asks
 * for them as for any origin). A data dir restored from an older copy has
 * an older file and an older feed; the node signs nothing until it has heard
 * a peer since it started and no peer heard holds more of its feed than it
 * does (payment-service.ts). The residual risk: restored, and the peers it
 * hears all lack its newer entries while a payee it does not hear holds
 * them. Then it can sign a voucher at a seq it used before; that payee sees
 * two vouchers at one seq, a provable fork (reported, kept as evidence, no
 * more credit; the mesh quarantines the forked feed), and is owed no less
 * than its highest voucher says.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { removeStaleTemps, writeFileAtomic } from '../../storage/atomic-json-file.js';

const mark = z.strictObject({ seq: z.number().int().min(0), total: z.number().int().min(0) });
const fileSchema = z.strictObject({
  v: z.literal(1),
  /** channel key (payer|payee|unit) -> last voucher issued: seq and cumulative. */
  vouchers: z.record(z.string(), mark),
  /** channel key -> last settlement recorded: n and total. */
  settlements: z.record(z.string(), mark),
});
type IssuedFile = z.output<typeof fileSchema>;
export type Mark = z.output<typeof mark>;

export class IssuedState {
  private state: IssuedFile = { v: 1, vouchers: {}, settlements: {} };

  constructor(private readonly file: string) {}

  static fileIn(dataDir: string): string {
    return path.join(dataDir, 'payments', 'issued.json');
  }

  async load(): Promise<void> {
    await removeStaleTemps(this.file); // a kill -9 mid-save leaves one; the file itself is whole (renamed into place)
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined; // refused below, as any other content that is not a state file
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      throw new ApiaryError(ErrorCodes.STORAGE_CORRUPT, `${this.file} is not a payments state file`, {
        hint: 'restore it from a backup; the node does not reset it on its own (it would sign below what it signed before)',
      });
    }
    this.state = parsed.data;
  }

  voucher(key: string): Mark {
    return this.state.vouchers[key] ?? { seq: 0, total: 0 };
  }

  settlement(key: string): Mark {
    return this.state.settlements[key] ?? { seq: 0, total: 0 };
  }

  /** Raises a mark to at least `m` (from the feed): never lowers it. True if it moved. */
  raise(kind: 'vouchers' | 'settlements', key: string, m: Mark): boolean {
    const held = this.state[kind][key] ?? { seq: 0, total: 0 };
    if (m.seq <= held.seq && m.total <= held.total) return false;
    this.state[kind][key] = { seq: Math.max(held.seq, m.seq), total: Math.max(held.total, m.total) };
    return true;
  }

  /** Durable before the record it numbers leaves the node. */
  async save(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify(this.state));
  }
}
