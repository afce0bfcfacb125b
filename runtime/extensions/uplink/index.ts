/**
 * The uplink: bridges feed entries to an external broker (EMQX, Mosquitto,
 * HiveMQ) from the feed store, so nothing is lost while it is down
 * (runtime/mesh/uplink.ts is the library). Its status shows under `mesh.uplink`.
 */
import path from 'node:path';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import { Uplink } from '../../mesh/uplink.js';

export function createUplink(config: ApiaryConfig): Extension {
  let uplink: Uplink | undefined;
  return {
    name: 'uplink',
    async start(ctx) {
      const uplinkConfig = config.mesh.uplink;
      if (!uplinkConfig || !ctx.mesh) return;
      uplink = new Uplink({
        ...uplinkConfig,
        clientId: `apiary-uplink-${ctx.identity.nodeId}`,
        store: ctx.mesh.store,
        stateFile: path.join(config.node.dataDir, 'mesh', 'uplink-cursor.json'),
        ownNodeId: ctx.identity.nodeId,
        topicPrefix: config.bus.topicPrefix,
        counters: ctx.counters,
        logger: ctx.logger,
      });
      const wake = () => uplink?.notify();
      ctx.events.on('feed-entry', wake);
      ctx.events.on('feed-append', wake);
      await uplink.start();
    },
    async stop() {
      await uplink?.stop();
    },
    status: () => (uplink ? { mesh: { uplink: uplink.status() } } : {}),
  };
}
