/**
 * Node-RED beside the node (issue 13): an optional editor and flow runtime
 * in its own process, supervised by the node (supervisor.ts) with settings
 * generated from the `flows` section (node-red-files.ts) and a starter flow
 * (default-flow.ts). The node never loads Node-RED itself.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import { declareFlowsCommands } from './commands.js';
import { flowEnv, writeDefaultFlow } from './default-flow.js';
import { findNodeRed, loadOrCreateSecret, nodeRedSettings, paletteDir, readAdmin, userDirOf, writeSettings } from './node-red-files.js';
import { NodeRedSupervisor } from './supervisor.js';

export function createFlows(config: ApiaryConfig): Extension {
  const flows = config.flows;
  const dataDir = config.node.dataDir;
  const userDir = userDirOf(flows, dataDir);
  const host = flows.host.includes(':') ? `[${flows.host}]` : flows.host;
  const url = `http://${host}:${flows.port}/`;
  let supervisor: NodeRedSupervisor | undefined;

  return {
    name: 'flows',
    async start(ctx) {
      // Checked now, so a missing Node-RED or an unguarded LAN editor fails the extension with its fix, not a restart loop.
      const redJs = findNodeRed(flows);
      const prepare = async () => {
        const settings = nodeRedSettings(flows, userDir, await loadOrCreateSecret(dataDir), await readAdmin(dataDir), paletteDir());
        const settingsFile = await writeSettings(userDir, settings);
        if (flows.defaultFlow && await writeDefaultFlow(userDir)) ctx.logger.info({ userDir }, 'wrote the default flow');
        return { userDir, settingsFile };
      };
      await prepare();
      const broker = ctx.broker ? { host: loopbackOf(config.broker.host), port: ctx.broker.port } : undefined;
      const s = new NodeRedSupervisor({
        redJs,
        heapMb: flows.heapMb,
        prepare,
        env: flowEnv(ctx.topics, config.bus.topicPrefix, ctx.identity.nodeId, broker),
        url,
        restart: flows.restart,
        startTimeoutMs: flows.startTimeout,
        stopTimeoutMs: flows.stopTimeout,
        logger: ctx.logger,
        counters: ctx.counters,
      });
      supervisor = s;
      declareFlowsCommands(ctx.commands, {
        start: () => { s.start(); return s.status(); },
        stop: async () => { await s.stop(); return s.status(); },
        status: () => s.status(),
      });
      // Not awaited: Node-RED takes seconds (a minute on a Pi Zero) to start, and the node does not wait for it.
      s.start();
    },
    async stop() {
      await supervisor?.stop();
    },
    status: () => (supervisor ? { flows: supervisor.status() } : {}),
  };
}

/** Node-RED reaches the broker on this machine: a wildcard listen address is reached on loopback. */
function loopbackOf(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}
