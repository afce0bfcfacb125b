/**
 * Logging: pino, pretty in a terminal, JSON lines otherwise (journald, files,
 * log shippers). pino-pretty runs in-process, not in a worker thread, to keep
 * start-up and memory small on a 512 MB board.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/** `skip`: log calls (their arguments) not to write, e.g. lines a command shows its own way. */
export function createLogger(level: LevelWithSilent, options: { pretty?: boolean; skip?: (args: unknown[]) => boolean } = {}): Logger {
  const usePretty = options.pretty ?? Boolean(process.stdout.isTTY);
  const skip = options.skip;
  const settings = {
    level,
    base: undefined,
    ...(skip ? { hooks: { logMethod(args: Parameters<Logger['info']>, method: (...a: Parameters<Logger['info']>) => void) { if (!skip(args)) method.apply(this, args); } } } : {}),
  };
  if (!usePretty) return pino(settings);
  // Loaded only for a terminal: services and benchmarks do not pay for it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(settings, pretty({ colorize: true, sync: true, translateTime: 'HH:MM:ss', ignore: 'pid,hostname' }));
}
