/**
 * A value from untrusted input, safe to put in an error message: String()
 * of an object whose toString is not a function throws, and an error must
 * never come out of a decoder as anything but its own code.
 */
export function shownValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 64));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
