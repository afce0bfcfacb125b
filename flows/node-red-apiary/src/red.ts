/**
 * The small part of Node-RED's runtime API the palette uses, typed here
 * (Node-RED ships no types, and @node-red/* type packages lag the runtime).
 */

export interface NodeMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  [key: string]: unknown;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFn = (msg: NodeMessage | NodeMessage[]) => void;
export type DoneFn = (err?: Error) => void;

/** What every node's definition carries (the editor's saved properties come on top). */
export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
}

/** The node instance Node-RED's createNode fills in (`this` in a node's constructor). */
export interface RedNode {
  readonly id: string;
  readonly type: string;
  name?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', listener: (msg: NodeMessage, send: SendFn, done: DoneFn) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage | NodeMessage[]): void;
  status(status: NodeStatus): void;
  log(message: string): void;
  warn(message: string): void;
  error(err: string | Error, msg?: NodeMessage): void;
}

export interface AdminRequest {
  params: Record<string, string | undefined>;
  query: Record<string, unknown>;
}

export interface AdminResponse {
  json(body: unknown): void;
  status(code: number): AdminResponse;
}

export type AdminHandler = (req: AdminRequest, res: AdminResponse, next: () => void) => void;

export interface NodeAPI {
  nodes: {
    createNode(node: RedNode, def: NodeDef): void;
    registerType(type: string, constructor: (this: RedNode, def: NodeDef) => void, options?: { credentials?: Record<string, { type: 'text' | 'password' }> }): void;
    getNode(id: string): RedNode | null;
  };
  httpAdmin: { get(path: string, ...handlers: AdminHandler[]): void };
  auth: { needsPermission(permission: string): AdminHandler };
}
