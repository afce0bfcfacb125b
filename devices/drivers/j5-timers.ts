/**
 * johnny-five components start intervals in their constructors and never
 * clear them (Hygrometer, Multi: see hygrometer.js and sip.js in johnny-five
 * 2.1), which assumes the board lives as long as the process. A node that
 * stops and starts, or a test suite, needs them gone: construct components
 * inside `captureIntervals` and clear what it caught on close.
 */
export function captureIntervals<T>(construct: () => T): { value: T; intervals: NodeJS.Timeout[] } {
  const intervals: NodeJS.Timeout[] = [];
  const original = globalThis.setInterval;
  const capturing = ((...args: Parameters<typeof setInterval>) => {
    const handle = original(...args);
    intervals.push(handle);
    return handle;
  }) as typeof setInterval;
  globalThis.setInterval = capturing;
  try {
    return { value: construct(), intervals };
  } finally {
    globalThis.setInterval = original;
  }
}
