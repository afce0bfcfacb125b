/**
 * For what the node publishes no topic for (shared state, mesh entries): a
 * read now, then `intervalMs` after each read ends, and on any input; never
 * two at once. A failed read shows on the status and in the log; closing
 * waits for the read under way, and a read that ends after close sends nothing.
 */
import type { RedNode } from './red.js';
import type { followConnection } from './status.js';

export function readRepeatedly<T>(node: RedNode, status: ReturnType<typeof followConnection>, intervalMs: number, read: () => Promise<T>, use: (value: T) => void): void {
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  const poll = (): Promise<void> => {
    // A throw in `use` (a reply of the wrong shape) is a failed read too.
    reading ??= read().then((value) => {
      if (!closed) use(value);
    }).catch((err: unknown) => {
      if (closed) return;
      status.show({ fill: 'red', shape: 'dot', text: 'read failed' });
      node.error(err instanceof Error ? err.message : String(err));
    }).finally(() => { reading = undefined; });
    return reading;
  };
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => { void poll().finally(schedule); }, intervalMs);
  };
  void poll().finally(schedule);
  node.on('input', (_msg, _send, done) => { void poll().finally(() => done()); });
  node.on('close', (_removed, done) => {
    closed = true;
    clearTimeout(timer);
    status.stop();
    void (reading ?? Promise.resolve()).finally(done);
  });
}
