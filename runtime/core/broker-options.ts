/** The embedded broker's options from the config's `broker` section (the library keeps its explicit options). */
import type { EmbeddedBrokerOptions } from '../broker/embedded-broker.js';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';
import { readBrokerTls } from '../mesh/create-mesh.js';

export async function brokerOptions(config: ApiaryConfig, logger: Logger, counters: Counters, access: EmbeddedBrokerOptions['access']): Promise<EmbeddedBrokerOptions> {
  const { host, port, tls, maxQueuedMessages, maxQueuedBytes, stallTimeout, connectTimeout, maxConnectBytes, maxConnections, maxConnectionsPerAddress, maxInflightQos2, maxTopicLevels } = config.broker;
  const { maxRetainedPerClient, maxRetainedBytesPerClient, maxRetained, maxRetainedBytes, maxOfflineQueuedBytes, maxSubscriptionsPerClient } = config.broker;
  return {
    host, port, logger, counters, access, maxQueuedMessages, maxQueuedBytes, stallTimeoutMs: stallTimeout, maxTopicLevels,
    connectTimeoutMs: connectTimeout, maxConnectBytes, maxConnections, maxConnectionsPerAddress, maxInflightQos2, maxOfflineQueuedBytes, maxSubscriptionsPerClient,
    retained: { perClientMessages: maxRetainedPerClient, perClientBytes: maxRetainedBytesPerClient, totalMessages: maxRetained, totalBytes: maxRetainedBytes },
    ...(tls ? { tlsListener: { host: tls.host ?? host, port: tls.port, tls: await readBrokerTls(tls) } } : {}),
  };
}
