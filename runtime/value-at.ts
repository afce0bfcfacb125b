/** The value at a path (zod issue paths) inside untrusted input, or undefined: error messages show what was given. */
export function valueAt(raw: unknown, keys: readonly PropertyKey[]): unknown {
  let current = raw;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
