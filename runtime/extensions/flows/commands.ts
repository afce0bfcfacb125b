/** `flows/start`, `flows/stop`, `flows/status`. Light on purpose: `apiary commands` declares them without loading the extension. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';

export interface FlowsControl {
  start(): unknown;
  stop(): Promise<unknown>;
  status(): unknown;
}

export function declareFlowsCommands(registry: CommandRegistry, control?: FlowsControl): void {
  const unavailable = () => (control ? undefined : 'Node-RED is off on this node (set flows.enabled: true and restart the node)');
  registry.define('flows/status', {
    description: "the supervised Node-RED: state (running, starting, crashed, stopped), pid, restarts, crashes and the editor's URL",
    args: z.strictObject({}),
    unavailable,
    handler: () => control?.status(),
  });
  registry.define('flows/start', {
    description: 'start the supervised Node-RED (also after a restart loop left it crashed); answers at once, while it starts',
    args: z.strictObject({}),
    write: true,
    unavailable,
    handler: () => control?.start(),
  });
  registry.define('flows/stop', {
    description: 'stop the supervised Node-RED (SIGTERM, then SIGKILL after flows.stopTimeout) until `flows/start` or the next start of the node',
    args: z.strictObject({}),
    write: true,
    unavailable,
    handler: () => control?.stop(),
  });
}
