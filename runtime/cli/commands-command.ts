/**
 * `apiary commands`: the commands a node answers, read from the node's
 * command registry (runtime/agent/node-commands.ts), offline: no node needs
 * to run. The same registry answers the MQTT command topics.
 */
import { describeArgs, jsonSchemaOf } from '../commands/command-registry.js';
import { nodeCommands } from '../apps/index.js';

export function commandsCommand(options: { json?: boolean; topicPrefix: string }): void {
  const commands = nodeCommands().list();
  if (options.json) {
    const out = commands.map((c) => ({ name: c.name, description: c.description, write: c.write, args: jsonSchemaOf(c) }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.description}${c.write ? ' (changes the node)' : ''}\n  ${' '.repeat(width)}  arguments: ${describeArgs(c)}`);
  process.stdout.write(
    `commands a node answers on ${options.topicPrefix}/<node id>/cmd/<name>, with {"requestId": "...", "args": {...}};\n` +
      `the reply comes on ${options.topicPrefix}/<node id>/reply/<requestId> as {"ok": true, "result": ...} or {"ok": false, "code": ..., "error": ...}\n\n` +
      `${lines.join('\n')}\n`,
  );
}
