/**
 * Strict base64url (RFC 4648 §5, no padding) for keys, signatures and
 * nonces from the network: only the canonical spelling of exactly the
 * expected number of bytes is accepted. Node's decoder ignores stray
 * characters and the unused low bits of the last character, so without this
 * one signature has several spellings (a replay cache keyed on the text
 * would take each for new).
 */

/** The bytes of `text` when it is the canonical base64url of exactly `bytes` bytes; else undefined. */
export function decodeCanonicalBase64url(text: unknown, bytes: number): Buffer | undefined {
  if (typeof text !== 'string' || text.length !== Math.ceil((bytes * 4) / 3) || !/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const raw = Buffer.from(text, 'base64url');
  return raw.length === bytes && raw.toString('base64url') === text ? raw : undefined;
}

export function isCanonicalBase64url(text: unknown, bytes: number): text is string {
  return decodeCanonicalBase64url(text, bytes) !== undefined;
}
