/** The MQTT view of the node's command registry: `<prefix>/<nodeId>/cmd/<name>`, answered on `reply/<requestId>`. */
import type { Extension } from '../../core/extension.js';
import { CommandHandler } from './mqtt-commands.js';

export function createMqttCommands(): Extension {
  let handler: CommandHandler | undefined;
  return {
    name: 'mqtt-commands',
    async start(ctx) {
      handler = new CommandHandler(ctx);
      await handler.start();
    },
    async stop() {
      await handler?.stop();
      handler = undefined;
    },
  };
}
