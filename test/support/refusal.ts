/** Checks that something is refused with a stable error code (and, if given, words of its message). */
import { expect } from 'vitest';

/** The error `work` throws or rejects with (the test fails if it does not). */
export async function refusal(work: Promise<unknown> | (() => unknown)): Promise<{ code?: string; message: string }> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a refusal, but it went through');
}

export async function expectRefusal(work: Promise<unknown> | (() => unknown), code: string, text?: string | RegExp): Promise<void> {
  const err = await refusal(work);
  expect(err.code).toBe(code);
  if (typeof text === 'string') expect(err.message).toContain(text);
  else if (text) expect(err.message).toMatch(text);
}
