/**
 * Tells systemd how the node is doing (sd_notify(3)): READY=1 with a STATUS
 * line once the node has started, WATCHDOG=1 every half of WATCHDOG_USEC
 * while its event loop turns, STOPPING=1 when it stops. The pings come from
 * a real-time timer on the node's own loop, not from the node clock (which
 * runs faster in a simulation): a loop that hangs stops pinging, and systemd
 * restarts the service (WatchdogSec= in the unit, packaging/apiary.service).
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { describeError } from '../../errors.js';
import { SystemdNotifier, watchdogIntervalMs, type NotifierOptions } from './notifier.js';

export interface SystemdOptions extends NotifierOptions {
  readonly pid?: number;
}

export function createSystemd(config: ApiaryConfig, options: SystemdOptions = {}): Extension {
  const env = options.env ?? process.env;
  const notifier = new SystemdNotifier({ ...options, env });
  const intervalMs = watchdogIntervalMs(env, options.pid);
  let ctx: NodeContext | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pinging = false;
  let stopped = false;
  const sent = { ready: false, watchdog: 0, stopping: false, failures: 0 };
  let lastError: string | undefined;

  // Every notification is tracked (stop waits for it) and a failure is counted, never thrown.
  const notify = async (args: readonly string[]): Promise<boolean> => {
    try {
      await notifier.send(args);
      return true;
    } catch (err) {
      sent.failures += 1;
      lastError = describeError(err);
      ctx?.counters.increment('systemd.notify_failures');
      if (sent.failures === 1) ctx?.logger.warn({ err: describeError(err) }, 'could not notify systemd (further failures are only counted)');
      return false;
    }
  };
  const ping = () => {
    if (pinging || stopped) return; // one at a time: a slow systemd-notify does not pile up children
    pinging = true;
    ctx?.track(notify(['WATCHDOG=1']).then((ok) => {
      if (ok) sent.watchdog += 1;
    }).finally(() => { pinging = false; }));
  };

  return {
    name: 'systemd',
    start(context) {
      ctx = context;
      if (intervalMs !== undefined) {
        // From now on, not from READY: systemd may count the watchdog from the start (the models load after this).
        timer = setInterval(ping, intervalMs);
        ping();
      }
      context.events.on('started', async () => {
        const device = config.device.kind;
        sent.ready = await notify(['--ready', `--status=node ${context.identity.nodeId} running (${device})`]);
        if (sent.ready) context.logger.info({ watchdogMs: intervalMs === undefined ? null : intervalMs * 2 }, 'told systemd the node is ready');
      });
      return Promise.resolve();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      // STOPPING=1 rather than --stopping: the flag needs systemd 253 (Debian 12 has 252).
      sent.stopping = await notify(['--status=stopping', 'STOPPING=1']);
    },
    status: () => ({
      systemd: {
        ready: sent.ready,
        watchdogIntervalMs: intervalMs ?? null,
        watchdogPings: sent.watchdog,
        notifyFailures: sent.failures,
        ...(lastError !== undefined ? { lastError } : {}),
      },
    }),
  };
}
