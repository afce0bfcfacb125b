/**
 * How the owners settle what the vouchers say, when they are online: left
 * open on purpose. Vouchers are IOUs between owners; Apiary records that a
 * settlement happened (`pay/settle`, a signed entry by the payee) but does
 * not move money itself. An owner who wants it automatic writes an adapter
 * (a bank transfer API, Lightning, a stablecoin, a shared spreadsheet) and
 * calls `pay/settle` with what it settled; none ships with Apiary.
 */

/** What an adapter reports back for a settlement it made. */
export interface SettlementReceipt {
  /** The adapter's own reference (a transfer id, a payment hash, an invoice number): goes into the settlement's note. */
  readonly reference: string;
  /** Whole units settled (may be less than asked). */
  readonly amount: number;
}

export interface SettlementAdapter {
  /** A name for logs and notes, like "manual" or "bank". */
  readonly name: string;
  /** Settles `amount` of `unit` owed by `peer` to this node's owner, by whatever means the adapter has. */
  settle(peer: string, unit: string, amount: number): Promise<SettlementReceipt>;
}

/**
 * The only adapter there is: the owners settled by hand (cash at the market,
 * honey for credits) and the payee's owner says so; `reference` is their note.
 */
export function manualSettlement(reference: string): SettlementAdapter {
  return { name: 'manual', settle: (_peer, _unit, amount) => Promise.resolve({ reference, amount }) };
}
