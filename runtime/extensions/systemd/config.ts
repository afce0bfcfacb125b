/** The `systemd` section: readiness and watchdog notifications to systemd (runtime/extensions/systemd/). */
import { z } from 'zod';

export const systemdSchema = z.strictObject({
  /**
   * auto: notify when systemd asks for it (NOTIFY_SOCKET is set, as in a
   * Type=notify unit); on: always (an error is counted when there is no
   * socket); off: never, even under systemd.
   */
  notify: z.enum(['auto', 'on', 'off'], { error: 'expected "auto" (when started by systemd), "on" or "off"' }).default('auto'),
});

/** Whether the extension runs: a pure function of the config and the environment (tested without a node). */
export function systemdNotifyEnabled(notify: 'auto' | 'on' | 'off', env: NodeJS.ProcessEnv): boolean {
  return notify === 'on' || (notify === 'auto' && (env.NOTIFY_SOCKET ?? '') !== '');
}
