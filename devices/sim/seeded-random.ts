/**
 * Deterministic randomness for the simulator: noise is a pure function of
 * (seed, stream, time step), so a reading at a given simulated time is the
 * same however often or in whatever order it is asked for.
 */

/** 32-bit integer hash (a variant of lowbias32 by Chris Wellons). */
function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Uniform in [0, 1) for the given keys. */
export function uniformAt(seed: number, stream: number, step: number): number {
  return hash32(hash32(hash32(seed) ^ stream) ^ (step | 0) ^ Math.floor(step / 2 ** 32)) / 2 ** 32;
}

/** Standard normal for the given keys (Box-Muller on two hashed uniforms). */
export function gaussianAt(seed: number, stream: number, step: number): number {
  const u1 = Math.max(uniformAt(seed, stream, step * 2), 1e-12);
  const u2 = uniformAt(seed, stream, step * 2 + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
