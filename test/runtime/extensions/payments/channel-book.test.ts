/**
 * The channel book and the signed records on their own, with real Ed25519
 * keys: what the payee keeps when vouchers are lost, late, repeated,
 * contradictory or forged; and a statement that does not depend on the
 * order entries arrived in.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nodeIdFromPublicKey, type NodeIdentity } from '../../../../runtime/identity/identity.js';
import { ChannelBook, channelTotals, HISTORY } from '../../../../runtime/extensions/payments/channel-book.js';
import { statement } from '../../../../runtime/extensions/payments/reports.js';
import { checkSettlement, checkVoucher, signSettlement, signVoucher, type Voucher } from '../../../../runtime/extensions/payments/signed-records.js';

function identity(): NodeIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { nodeId: nodeIdFromPublicKey(raw), publicKey: raw.toString('base64url'), sign: (data) => sign(null, data, privateKey) };
}

const payer = identity();
const payee = identity();
const voucher = (seq: number, cumulative: number, who = payer): Voucher =>
  signVoucher(who, { payer: who.nodeId, payee: payee.nodeId, unit: 'credit', seq, cumulative, t: 1_700_000_000_000 + seq });

describe('the channel book', () => {
  it('a dropped voucher is covered by the next: the payee holds the highest cumulative; the lost one, if it turns up, changes nothing', () => {
    const book = new ChannelBook();
    expect(book.addVoucher(voucher(1, 3))).toBe('accepted');
    // Voucher 2 (cumulative 5) is lost on the way; voucher 3 carries everything.
    expect(book.addVoucher(voucher(3, 9))).toBe('accepted');
    expect(channelTotals(book.get(payer.nodeId, payee.nodeId, 'credit'))).toMatchObject({ vouched: 9, outstanding: 9, seq: 3, forked: false });
    // Voucher 2 turns up late: listed, no amount changes; a replay of one held is ignored.
    expect(book.addVoucher(voucher(2, 5))).toBe('late');
    expect(book.addVoucher(voucher(2, 5))).toBe('stale');
    expect(book.addVoucher(voucher(1, 3))).toBe('stale');
    expect(book.get(payer.nodeId, payee.nodeId, 'credit')?.vouchers.map((v) => v.seq)).toEqual([1, 2, 3]);
    expect(channelTotals(book.get(payer.nodeId, payee.nodeId, 'credit')).vouched).toBe(9);
  });

  it('two vouchers at one seq, or a higher seq for less, are forks: evidence kept, the amount held unchanged', () => {
    const book = new ChannelBook();
    book.addVoucher(voucher(1, 3));
    book.addVoucher(voucher(2, 8));
    expect(book.addVoucher(voucher(2, 4))).toBe('fork');
    expect(book.addVoucher(voucher(3, 6))).toBe('fork');
    const channel = book.get(payer.nodeId, payee.nodeId, 'credit');
    expect(channel?.forks.map((f) => f.kind)).toEqual(['same-seq', 'cumulative-went-down']);
    expect(channelTotals(channel)).toMatchObject({ vouched: 8, forked: true });
  });

  it('keeps a bounded window of vouchers per channel', () => {
    const book = new ChannelBook();
    for (let seq = 1; seq <= HISTORY + 10; seq++) book.addVoucher(voucher(seq, seq * 2));
    const channel = book.get(payer.nodeId, payee.nodeId, 'credit');
    expect(channel?.vouchers).toHaveLength(HISTORY);
    expect(channel?.vouchers[0]?.seq).toBe(11);
    expect(channelTotals(channel).vouched).toBe((HISTORY + 10) * 2);
  });

  it('settlements lower what is outstanding; a repeated one changes nothing', () => {
    const book = new ChannelBook();
    book.addVoucher(voucher(1, 10));
    const s1 = signSettlement(payee, { payer: payer.nodeId, payee: payee.nodeId, unit: 'credit', n: 1, amount: 4, total: 4, t: 1 });
    expect(book.addSettlement(s1)).toBe('accepted');
    expect(book.addSettlement(s1)).toBe('stale');
    // Another settlement 1, or a settlement 2 whose total does not include settlement 1, contradicts what is held.
    const settle = (n: number, amount: number, total: number) => signSettlement(payee, { payer: payer.nodeId, payee: payee.nodeId, unit: 'credit', n, amount, total, t: n });
    expect(book.addSettlement(settle(1, 5, 5))).toBe('conflict');
    expect(book.addSettlement(settle(2, 2, 5))).toBe('conflict');
    expect(channelTotals(book.get(payer.nodeId, payee.nodeId, 'credit'))).toMatchObject({ vouched: 10, settled: 4, outstanding: 6 });
  });

  it('a statement is the same whichever end builds it and in whatever order the records came', () => {
    const back = signVoucher(payee, { payer: payee.nodeId, payee: payer.nodeId, unit: 'credit', seq: 1, cumulative: 2, t: 5 });
    const records = [voucher(1, 3), voucher(2, 7), back];
    const one = new ChannelBook();
    const other = new ChannelBook();
    for (const v of records) one.addVoucher(v);
    for (const v of [...records].reverse()) other.addVoucher(v);
    const a = statement(one, payer.nodeId, payee.nodeId);
    const b = statement(other, payee.nodeId, payer.nodeId);
    expect(b).toEqual(a);
    expect(a.units[0]?.net).toBe(payer.nodeId < payee.nodeId ? 7 - 2 : 2 - 7);
    // One more voucher on one side only: the digests differ.
    one.addVoucher(voucher(3, 8));
    expect(statement(one, payer.nodeId, payee.nodeId).digest).not.toBe(a.digest);
  });
});

describe('signed vouchers and settlements', () => {
  it('verify with the signer key only; an altered amount, another key or a bad shape is refused', () => {
    const v = voucher(1, 3);
    expect(checkVoucher(JSON.parse(JSON.stringify(v)), payer.publicKey)).toEqual({ ok: true, record: v });
    expect(checkVoucher({ ...v, cumulative: 300 }, payer.publicKey)).toEqual({ ok: false, reason: 'signature' });
    expect(checkVoucher(v, payee.publicKey)).toEqual({ ok: false, reason: 'signature' });
    expect(checkVoucher({ ...v, cumulative: 1.5 }, payer.publicKey)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkVoucher({ ...v, extra: 1 }, payer.publicKey)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkVoucher({ ...v, payee: v.payer }, payer.publicKey)).toEqual({ ok: false, reason: 'malformed' });
    // A voucher signature never verifies as a settlement (domain-separated signing bytes).
    const s = signSettlement(payee, { payer: payer.nodeId, payee: payee.nodeId, unit: 'credit', n: 1, amount: 3, total: 3, t: 1 });
    expect(checkSettlement(s, payee.publicKey)).toEqual({ ok: true, record: s });
    expect(checkSettlement({ ...s, total: 2 }, payee.publicKey)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkSettlement({ ...s, sig: v.sig }, payee.publicKey)).toEqual({ ok: false, reason: 'signature' });
  });
});
