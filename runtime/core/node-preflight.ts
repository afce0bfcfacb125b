/**
 * What a start can fail on, checked and taken before the node writes
 * anything: the data dir (usable, 0700, created if missing), its lock, and the
 * broker's ports. So a start that fails (port in use, another node on the
 * dir, an impossible --data-dir) leaves no identity or state behind; a data
 * dir it created for nothing is removed again.
 */
import { rmdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { prepareDataDir } from '../storage/data-dir.js';
import { DataDirLock } from '../storage/data-dir-lock.js';

/** Fails like the broker would if `host:port` cannot be listened on (port 0 always can). */
async function checkPortFree(host: string, port: number, what: string): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (err) {
    const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new ApiaryError(ErrorCodes.BROKER_LISTEN_FAILED, `the ${what} cannot listen on ${host}:${port}: ${(err as Error).message}`, {
      hint: inUse ? 'another broker (mosquitto?) or Apiary node uses that port: stop it, or start with --port 0 (any free port) or --port 1884' : 'check broker.host in the config',
      cause: err,
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Removes the folders a failed start created, innermost first, each only if still empty. */
async function removeCreated(dataDir: string, created: string): Promise<void> {
  for (let dir = path.resolve(dataDir); ; dir = path.dirname(dir)) {
    if ((await rmdir(dir).then(() => true, () => false)) === false || dir === path.resolve(created)) return;
  }
}

/** The data dir, prepared and locked, and the ports checked; release() on stop. */
export async function acquireDataDir(config: ApiaryConfig, logger: Logger, counters: Counters): Promise<DataDirLock> {
  const { dataDir } = config.node;
  const { created } = await prepareDataDir(dataDir);
  let lock: DataDirLock | undefined;
  try {
    lock = await DataDirLock.acquire(dataDir, (stale) => {
      counters.increment('node.stale_lock_taken_over');
      logger.warn({ pid: stale?.pid, startedAt: stale?.startedAt }, 'took over the data dir lock of a node that no longer runs');
    });
    const { broker } = config;
    if (broker.enabled) {
      await checkPortFree(broker.host, broker.port, 'MQTT broker');
      if (broker.tls) await checkPortFree(broker.tls.host ?? broker.host, broker.tls.port, 'MQTT broker (TLS)');
    }
    return lock;
  } catch (err) {
    await lock?.release();
    if (created !== undefined) await removeCreated(dataDir, created);
    throw err;
  }
}
