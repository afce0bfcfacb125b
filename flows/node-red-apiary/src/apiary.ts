/**
 * The palette's entry (package.json "node-red".nodes): registers every Apiary
 * node type (node-types.ts). The bundle exports this function itself, as
 * Node-RED expects of a node file.
 */
import { registerCommandNodes } from './command-nodes.js';
import { registerConfigNode } from './config-node.js';
import { registerInNodes } from './in-nodes.js';
import { registerMeshNode } from './mesh-node.js';
import type { NodeAPI } from './red.js';

export default function register(RED: NodeAPI): void {
  registerConfigNode(RED);
  registerInNodes(RED);
  registerCommandNodes(RED);
  registerMeshNode(RED);
}
