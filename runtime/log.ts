/**
 * Logging: pino, pretty in a terminal, JSON lines otherwise (journald, files,
 * log shippers). pino-pretty runs in-process, not in a worker thread, to keep
 * start-up and memory small on a 512 MB board.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

export function createLogger(level: LevelWithSilent, options: { pretty?: boolean } = {}): Logger {
  const usePretty = options.pretty ?? Boolean(process.stdout.isTTY);
  if (!usePretty) return pino({ level, base: undefined });
  // Loaded only for a terminal: services and benchmarks do not pay for it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino({ level, base: undefined }, pretty({ colorize: true, sync: true, translateTime: 'HH:MM:ss', ignore: 'pid,hostname' }));
}
