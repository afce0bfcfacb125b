/** Status dots: a short text (Node-RED's guidance), the connection's state until a value comes. */
import type { ApiaryConnection } from './connection.js';
import type { NodeStatus, RedNode } from './red.js';

export function connectionStatus(connection: ApiaryConnection): NodeStatus {
  switch (connection.state) {
    case 'connecting': return { fill: 'yellow', shape: 'ring', text: 'connecting' };
    case 'disconnected': return { fill: 'red', shape: 'ring', text: 'disconnected' };
    case 'closed': return { fill: 'grey', shape: 'ring', text: 'closed' };
    case 'connected':
      if (!connection.nodeId) return { fill: 'yellow', shape: 'ring', text: 'no node found yet' };
      if (connection.nodeState === 'offline') return { fill: 'yellow', shape: 'ring', text: 'node offline' };
      return { fill: 'green', shape: 'ring', text: 'connected' };
  }
}

/**
 * Shows the connection's state, or the node's last value while connected;
 * returns `show(value)` for new values and the way to stop following.
 */
export function followConnection(node: RedNode, connection: ApiaryConnection): { show(status: NodeStatus): void; stop(): void } {
  let last: NodeStatus | undefined;
  const render = () => {
    const base = connectionStatus(connection);
    node.status(last && base.fill === 'green' ? last : base);
  };
  const stop = connection.onStateChange(render);
  render();
  return {
    show(status) { last = status; render(); },
    stop,
  };
}

/** Numbers short enough for a status line. */
export function shortNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}
