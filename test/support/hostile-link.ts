/** A hostile (but trusted) node speaking through its own, real link: what a modified node could send. */
import { encodeMeshMessage, type MeshHeader } from '../../runtime/mesh/mesh-protocol.js';
import type { PeerLink } from '../../runtime/mesh/peer-link.js';
import { waitFor, type TestMeshNode } from './mesh-node.js';

/** Sends a raw mesh message from `from` to `to` over from's link (waiting while the link is busy). */
export async function sendOverLink(from: TestMeshNode, to: TestMeshNode, header: MeshHeader, lines: Buffer[] = []): Promise<void> {
  const link = (from.mesh as unknown as { links: Map<string, PeerLink> }).links.get(to.node.nodeId);
  if (!link) throw new Error(`${from.name} has no link to ${to.name}`);
  await waitFor(() => link.send(encodeMeshMessage(header, lines)), 10_000, () => `link ${from.name} -> ${to.name} stays busy`);
}
