/**
 * `apiary-node`, the config node: one MQTT connection to an Apiary node's
 * broker, shared by every palette node that names it, closed when the flow
 * stops. Its admin endpoint fills the edit dialogs' pickers from the node's
 * retained info (models, rules) and its latest readings (channels).
 */
import { ErrorCodes } from '../../../runtime/errors.js';
import { ApiaryConnection, ApiaryFlowError } from './connection.js';
import type { NodeAPI, NodeDef, RedNode } from './red.js';

export interface ApiaryConfigDef extends NodeDef {
  host?: string;
  port?: string | number;
  prefix?: string;
  nodeId?: string;
}

export interface ApiaryConfigNode extends RedNode {
  connection?: ApiaryConnection;
  /** Why there is no connection: a field of the config node is wrong. */
  configError?: string;
}

/** Permission the admin endpoint asks for: reading a node's info is like reading the flows. */
export const READ_PERMISSION = 'apiary-node.read';

export function registerConfigNode(RED: NodeAPI): void {
  RED.nodes.registerType('apiary-node', function ApiaryNodeConfig(this: RedNode, def: ApiaryConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this as ApiaryConfigNode;
    try {
      node.connection = new ApiaryConnection({
        host: (def.host ?? '').trim() || '127.0.0.1',
        port: Number(def.port === undefined || def.port === '' ? 1883 : def.port),
        prefix: (def.prefix ?? '').trim() || 'apiary',
        nodeId: (def.nodeId ?? '').trim(),
        username: node.credentials?.username,
        password: node.credentials?.password,
        clientName: 'node-red-apiary',
      });
    } catch (err) {
      node.configError = (err as Error).message;
      node.error(`apiary-node "${def.name ?? def.id}": ${node.configError}`);
    }
    node.on('close', (_removed, done) => {
      const connection = node.connection;
      node.connection = undefined;
      if (!connection) return done();
      connection.close().then(done, (err: unknown) => {
        node.warn(`closing the MQTT connection: ${(err as Error).message}`);
        done();
      });
    });
  }, { credentials: { username: { type: 'text' }, password: { type: 'password' } } });

  // GET /apiary/nodes/<config node id>: what the editor's pickers offer. Channels are not in the info topic, so the
  // node's `status` command (its latest reading of each channel) is asked for them, briefly.
  RED.httpAdmin.get('/apiary/nodes/:id', RED.auth.needsPermission(READ_PERMISSION), (req, res) => {
    const config: ApiaryConfigNode | null = RED.nodes.getNode(req.params.id ?? '');
    const connection = config?.connection;
    if (!connection) {
      // Not an HTTP error: the editor asks for every new config node before its first deploy, and a browser logs each
      // 4xx as a console error. Nothing to offer yet, and why, in the shape the dialog's hint already shows.
      res.json({
        state: 'undeployed', nodeId: null, models: [], rules: [], channels: [], othersSeen: [],
        code: ErrorCodes.CONFIG_INVALID, lastError: config?.configError ?? 'this apiary-node is not deployed yet: deploy it, then open this dialog again',
      });
      return;
    }
    void pickerChoices(connection).then((body) => res.json(body));
  });
}

async function pickerChoices(connection: ApiaryConnection): Promise<Record<string, unknown>> {
  try {
    const status = await connection.request('status', undefined, 3_000) as { latest?: { readings?: Record<string, unknown> } } | undefined;
    for (const channel of Object.keys(status?.latest?.readings ?? {})) connection.channels.add(channel);
  } catch (err) {
    return { ...connection.describe(), lastError: err instanceof ApiaryFlowError ? err.message : String(err) };
  }
  return connection.describe();
}

/** The connection of the config node `id`, or why there is none (for the node's error and status). */
export function connectionOf(RED: NodeAPI, id: string | undefined): ApiaryConnection | string {
  const config: ApiaryConfigNode | null = id ? RED.nodes.getNode(id) : null;
  if (!config) return 'Apiary node: none chosen; pick an apiary-node (the connection to your Apiary node) in this node\'s dialog';
  return config.connection ?? `Apiary node: ${config.configError ?? 'not connected'}`;
}
